//! Error messages in kubectl's words.

/// `Error from server (Reason): message` for API errors; the whole cause chain otherwise.
pub fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            let message =
                if status.message.is_empty() { format!("HTTP {}", status.code) } else { status.message.clone() };
            if status.reason.is_empty() || status.reason == "Failed to parse error data" {
                format!("Error from server: {message}")
            } else {
                format!("Error from server ({}): {message}", status.reason)
            }
        }
        other => chain(other),
    }
}

/// The HTTP status code of an API error, if it is one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The error and its sources, joined by `: `, without repeating a source already quoted by
/// its parent.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn api_errors_read_like_kubectl() {
        let status = kube::core::Status::failure(
            "managedclusters.cluster.open-cluster-management.io \"x\" not found",
            "NotFound",
        )
        .with_code(404);
        let e = kube::Error::Api(status.boxed());
        assert_eq!(
            kube_message(&e),
            "Error from server (NotFound): managedclusters.cluster.open-cluster-management.io \"x\" not found"
        );
        assert_eq!(api_code(&e), Some(404));
        let plain = kube::Error::Api(
            kube::core::Status::failure("404 page not found", "Failed to parse error data").with_code(404).boxed(),
        );
        assert_eq!(kube_message(&plain), "Error from server: 404 page not found");
    }
}
