//! The bootstrap token format (kubeadm's): `[a-z0-9]{6}.[a-z0-9]{16}`, `ID.SECRET`. Here so
//! that the hub, which authenticates tokens, and the agent, which checks one before using
//! it, agree on it.

pub const ID_LEN: usize = 6;
pub const SECRET_LEN: usize = 16;

fn is_token_part(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `(ID, SECRET)` of a well-formed token; `None` otherwise.
pub fn split_bootstrap_token(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.split_once('.')?;
    (is_token_part(id, ID_LEN) && is_token_part(secret, SECRET_LEN)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubeadm_shaped_tokens_split() {
        assert_eq!(split_bootstrap_token("abc123.0123456789abcdef"), Some(("abc123", "0123456789abcdef")));
        for bad in ["", "abc123", "abc12.0123456789abcdef", "ABC123.0123456789abcdef", "abc123.0123456789abcde!"] {
            assert_eq!(split_bootstrap_token(bad), None, "{bad:?}");
        }
    }
}
