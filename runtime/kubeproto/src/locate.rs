//! Finds where a malformed message goes wrong. prost reports *what* failed ("buffer underflow")
//! but not *where*; this walks the wire format alongside the descriptors and names the field path
//! (`spec.template.spec.containers.env`) at which the bytes stop making sense.

use prost_reflect::{Kind, MessageDescriptor};

/// Nesting deeper than this is reported instead of followed (prost's own limit is 100).
const MAX_DEPTH: usize = 100;

/// The path and reason of the first problem in `bytes` read as `desc`, or `None` if the walk
/// finds nothing wrong (prost's error then stands on its own).
pub fn locate(desc: &MessageDescriptor, bytes: &[u8]) -> Option<String> {
    walk(desc, bytes, "", 0).err()
}

/// Checks one message's fields; nested messages are walked recursively.
fn walk(desc: &MessageDescriptor, mut buf: &[u8], path: &str, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{}: nested more than {MAX_DEPTH} levels deep", display(path)));
    }
    while !buf.is_empty() {
        let key = read_varint(&mut buf).ok_or_else(|| format!("{}: truncated field key", display(path)))?;
        let number = u32::try_from(key >> 3).unwrap_or(0);
        let field = desc.get_field(number);
        let name = match &field {
            Some(field) => join(path, field.name()),
            None => join(path, &format!("<field {number}>")),
        };
        match key & 7 {
            0 => {
                read_varint(&mut buf).ok_or_else(|| format!("{name}: truncated varint"))?;
            }
            1 => buf = skip(buf, 8).ok_or_else(|| format!("{name}: truncated 64-bit value"))?,
            5 => buf = skip(buf, 4).ok_or_else(|| format!("{name}: truncated 32-bit value"))?,
            2 => {
                let len = read_varint(&mut buf).ok_or_else(|| format!("{name}: truncated length"))?;
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if len > buf.len() {
                    return Err(format!("{name}: length {len} runs past the {} bytes left", buf.len()));
                }
                let (chunk, rest) = buf.split_at(len);
                buf = rest;
                match field.map(|f| f.kind()) {
                    Some(Kind::Message(sub)) => walk(&sub, chunk, &name, depth + 1)?,
                    Some(Kind::String) if std::str::from_utf8(chunk).is_err() => {
                        return Err(format!("{name}: string is not valid UTF-8"));
                    }
                    _ => {}
                }
            }
            wire => return Err(format!("{name}: unsupported wire type {wire}")),
        }
    }
    Ok(())
}

/// Reads one base-128 varint, advancing `buf`; `None` if it is truncated or too long.
fn read_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

/// `buf` without its first `n` bytes, if it has them.
fn skip(buf: &[u8], n: usize) -> Option<&[u8]> {
    buf.get(n..)
}

/// `a.b` path joining.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// The path for messages: the top level is `(object)`.
fn display(path: &str) -> &str {
    if path.is_empty() { "(object)" } else { path }
}
