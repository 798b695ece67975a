//! The wire formats, after the TLS handshake.
//!
//! **Gramine** (`FORMATS.md` §3): the client sends [`GRAMINE_REQUEST`] (35 bytes); the server
//! answers [`GRAMINE_RESPONSE`] (37 bytes), a u32 big-endian length and the secret. The secret is
//! the client's *default* one: the first `[[secret]]` its evidence is allowed to have. When it is
//! allowed none, the server closes the connection without answering (Gramine's protocol has no
//! way to say why; the audit log does).
//!
//! **ward extension**: the client sends [`WARD_REQUEST`] (18 bytes), a u32 BE count, then for
//! each name a u16 BE length and the UTF-8 name; each name at most once (a repeat would be
//! answered again, multiplying the answer, so it is rejected). The server answers, for each name in order, a
//! status byte ([`Status`]), a u32 BE length, and the secret (granted) or a UTF-8 reason. ward's
//! server gives no reason beyond "not granted" and the id of the audit record that holds it, and
//! answers an unknown name as a refused one ([`Status::Refused`]), so an answer reveals neither
//! the policy nor which secrets exist ([`Status::Unknown`] is still understood by the client).
//! After the per-name answers the server sends one [`Status::Run`] frame: the id of the audit
//! record of this request, which names the run in the workload's receipt (a client that does not
//! know the frame stops reading before it; a server that does not send it just closes). A
//! request rejected as a whole (too large, malformed) gets a single [`Status::RequestRejected`]
//! answer with the reason, then the connection closes. The two requests differ from their first
//! byte, so one server speaks both.
//!
//! Anything else: the server logs it and closes the connection.
//!
//! [`read_request`] is the server's parser, [`read_answer`] and [`read_gramine_answer`] the
//! client's: all three read attacker-controlled bytes (fuzzed by `fuzz/`'s
//! `provision_protocol` target).

use crate::{Error, Result};
use std::io::Read;
use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::Zeroizing;

/// Gramine's request (35 bytes, NUL included).
pub const GRAMINE_REQUEST: &[u8; 35] = b"SECRET_PROVISION_RA_TLS_REQUEST_V1\0";
/// Gramine's response header (37 bytes, NUL included).
pub const GRAMINE_RESPONSE: &[u8; 37] = b"SECRET_PROVISION_RA_TLS_RESPONSE_V1:\0";
/// The ward extension's request header (18 bytes, NUL included).
pub const WARD_REQUEST: &[u8; 18] = b"WARD_PROVISION_V1\0";
/// Largest secret or reason a client accepts in an answer.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The status of one answer in the ward extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The secret follows.
    Granted = 0,
    /// The client's evidence is not allowed this secret; the reason follows.
    Refused = 1,
    /// No secret has that name; a message follows.
    Unknown = 2,
    /// The whole request was rejected (sent once, instead of per-name answers); the reason
    /// follows.
    RequestRejected = 3,
    /// After the per-name answers: the run id, the audit record id of this request
    /// ([`RUN_ID_LEN`] lowercase hex digits).
    Run = 4,
}

/// Length of a run id: the 16 hex digits of an audit record id.
pub const RUN_ID_LEN: usize = 16;

/// Whether `id` has the form of a run id (what [`Status::Run`] carries).
pub fn is_run_id(id: &[u8]) -> bool {
    id.len() == RUN_ID_LEN && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Status {
    /// The status with this byte.
    pub fn from_byte(b: u8) -> Option<Status> {
        Some(match b {
            0 => Status::Granted,
            1 => Status::Refused,
            2 => Status::Unknown,
            3 => Status::RequestRejected,
            4 => Status::Run,
            _ => return None,
        })
    }
}

/// Encodes a ward-extension request for `names`.
pub fn encode_ward_request(names: &[&str]) -> Result<Vec<u8>> {
    if names.is_empty() {
        return Err(Error::InvalidRequest("no secret names were given".into()));
    }
    let count = u32::try_from(names.len())
        .map_err(|_| Error::InvalidRequest("too many secret names".into()))?;
    let mut out = Vec::with_capacity(WARD_REQUEST.len() + 4 + names.len() * 16);
    out.extend_from_slice(WARD_REQUEST);
    out.extend_from_slice(&count.to_be_bytes());
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            // Servers refuse repeats (they would multiply the answer).
            return Err(Error::InvalidRequest(format!(
                "secret {n:?} is named more than once"
            )));
        }
        let len = u16::try_from(n.len())
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "secret name of {} bytes; names are 1 to 65535 bytes",
                    n.len()
                ))
            })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(n.as_bytes());
    }
    Ok(out)
}

/// Encodes one ward-extension answer.
pub fn encode_answer(status: Status, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(5 + body.len()));
    out.push(status as u8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encodes Gramine's answer carrying `secret`.
pub fn encode_gramine_answer(secret: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        GRAMINE_RESPONSE.len() + 4 + secret.len(),
    ));
    out.extend_from_slice(GRAMINE_RESPONSE);
    out.extend_from_slice(&(secret.len() as u32).to_be_bytes());
    out.extend_from_slice(secret);
    out
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], peer: &str, what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => Error::Protocol {
            peer: peer.to_owned(),
            problem: format!(
                "the connection closed while reading {what}; the server may have refused the \
                 client (its audit log says why)"
            ),
        },
        _ => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(tls) => Error::Tls {
                peer: peer.to_owned(),
                source: tls.clone(),
            },
            None => Error::io(format!("reading {what} from {peer}"), e),
        },
    })
}

fn read_len(r: &mut impl Read, peer: &str, what: &str) -> Result<usize> {
    let mut len = [0u8; 4];
    read_exact(r, &mut len, peer, what)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_ANSWER_BYTES {
        return Err(Error::Protocol {
            peer: peer.to_owned(),
            problem: format!("{what} of {len} bytes exceeds the {MAX_ANSWER_BYTES}-byte limit"),
        });
    }
    Ok(len)
}

/// Reads one ward-extension answer: its status and body.
pub fn read_answer(r: &mut impl Read, peer: &str) -> Result<(Status, Zeroizing<Vec<u8>>)> {
    let mut status = [0u8; 1];
    read_exact(r, &mut status, peer, "an answer's status")?;
    let status = Status::from_byte(status[0]).ok_or_else(|| Error::Protocol {
        peer: peer.to_owned(),
        problem: format!("unknown answer status {}", status[0]),
    })?;
    let len = read_len(r, peer, "an answer's length")?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    read_exact(r, &mut body, peer, "an answer's body")?;
    Ok((status, body))
}

/// Reads Gramine's answer and returns the secret.
pub fn read_gramine_answer(r: &mut impl Read, peer: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut header = [0u8; 37];
    read_exact(r, &mut header, peer, "the response header")?;
    if &header != GRAMINE_RESPONSE {
        return Err(Error::Protocol {
            peer: peer.to_owned(),
            problem: "the response does not start with SECRET_PROVISION_RA_TLS_RESPONSE_V1:".into(),
        });
    }
    let len = read_len(r, peer, "the secret's length")?;
    let mut body = Zeroizing::new(vec![0u8; len]);
    read_exact(r, &mut body, peer, "the secret")?;
    Ok(body)
}

/// A request the server read, as [`read_request`] parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Gramine's request: the client's default secret.
    Gramine,
    /// The ward extension: these named secrets, in order (each 1 to 65535 bytes of UTF-8).
    Ward(Vec<String>),
}

/// Why [`read_request`] did not return a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRequest {
    /// Not this protocol, or the connection failed: close without answering.
    Close(String),
    /// A ward request that cannot be served: answer [`Status::RequestRejected`], then close.
    Reject(String),
}

/// The server side: reads one request from `r`, reading no more than `max` bytes of it.
///
/// The reader is the client's TLS stream, before any policy was applied: every byte is the
/// attacker's. Bytes after a complete request are left unread.
pub async fn read_request<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> std::result::Result<Request, BadRequest> {
    let io = |e: std::io::Error| {
        BadRequest::Close(match e.kind() {
            std::io::ErrorKind::UnexpectedEof => "the connection closed mid-request".into(),
            _ => format!("reading the request: {e}"),
        })
    };
    let mut first = [0u8; 1];
    r.read_exact(&mut first).await.map_err(io)?;
    if first[0] == GRAMINE_REQUEST[0] {
        let mut rest = [0u8; GRAMINE_REQUEST.len() - 1];
        r.read_exact(&mut rest).await.map_err(io)?;
        if rest[..] != GRAMINE_REQUEST[1..] {
            return Err(BadRequest::Close("not a provisioning request".into()));
        }
        return Ok(Request::Gramine);
    }
    if first[0] != WARD_REQUEST[0] {
        return Err(BadRequest::Close(format!(
            "not a provisioning request (first byte 0x{:02x})",
            first[0]
        )));
    }
    let mut rest = [0u8; WARD_REQUEST.len() - 1];
    r.read_exact(&mut rest).await.map_err(io)?;
    if rest[..] != WARD_REQUEST[1..] {
        return Err(BadRequest::Close("not a provisioning request".into()));
    }
    let mut count = [0u8; 4];
    r.read_exact(&mut count).await.map_err(io)?;
    let count = u32::from_be_bytes(count) as usize;
    if count == 0 {
        return Err(BadRequest::Reject("the request names no secret".into()));
    }
    let mut total = WARD_REQUEST.len() + 4;
    let too_large = |at_least: usize| {
        BadRequest::Reject(format!(
            "the request is larger than the server's limit of {max} bytes (at least {at_least})"
        ))
    };
    let minimum = count.saturating_mul(3).saturating_add(total);
    if minimum > max {
        return Err(too_large(minimum));
    }
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        let mut len = [0u8; 2];
        r.read_exact(&mut len).await.map_err(io)?;
        let len = u16::from_be_bytes(len) as usize;
        total += 2 + len;
        if total > max {
            return Err(too_large(total));
        }
        if len == 0 {
            return Err(BadRequest::Reject(
                "the request has an empty secret name".into(),
            ));
        }
        let mut name = vec![0u8; len];
        r.read_exact(&mut name).await.map_err(io)?;
        let name = String::from_utf8(name)
            .map_err(|_| BadRequest::Reject("a secret name is not UTF-8".into()))?;
        // A name asked twice would be answered twice: with a 1 MiB secret, a 4 KiB request
        // could take a gigabyte of answer. Each secret at most once caps an answer at the sum
        // of the configured secrets.
        if names.contains(&name) {
            return Err(BadRequest::Reject(format!(
                "the request names secret {name:?} more than once"
            )));
        }
        names.push(name);
    }
    Ok(Request::Ward(names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_gramine() {
        assert_eq!(GRAMINE_REQUEST.len(), 35);
        assert_eq!(GRAMINE_RESPONSE.len(), 37);
    }

    #[test]
    fn request_encoding() {
        let r = encode_ward_request(&["a", "bc"]).unwrap();
        assert_eq!(&r[..18], WARD_REQUEST);
        assert_eq!(&r[18..], &[0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c']);
        assert!(encode_ward_request(&[]).is_err());
        assert!(encode_ward_request(&[""]).is_err());
    }

    #[tokio::test]
    async fn requests_round_trip() {
        let r = encode_ward_request(&["wrap_key", "b"]).unwrap();
        let mut rest = &r[..];
        let got = read_request(&mut rest, 4096).await.unwrap();
        assert_eq!(got, Request::Ward(vec!["wrap_key".into(), "b".into()]));
        assert!(rest.is_empty());
        let mut g = &GRAMINE_REQUEST[..];
        assert_eq!(read_request(&mut g, 4096).await.unwrap(), Request::Gramine);
        assert!(matches!(
            read_request(&mut &r[..], 20).await,
            Err(BadRequest::Reject(_))
        ));
        // Each secret at most once: repeats would multiply the answer.
        assert!(encode_ward_request(&["b", "wrap_key", "b"]).is_err());
        let mut twice = encode_ward_request(&["b", "wrap_key"]).unwrap();
        twice[WARD_REQUEST.len() + 3] = 3;
        twice.extend_from_slice(&[0, 1, b'b']);
        match read_request(&mut &twice[..], 4096).await {
            Err(BadRequest::Reject(r)) => assert!(r.contains("\"b\" more than once"), "{r}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn run_ids() {
        assert_eq!(Status::from_byte(4), Some(Status::Run));
        assert_eq!(Status::from_byte(5), None);
        assert!(is_run_id(b"0123456789abcdef"));
        for bad in [
            &b"0123456789abcde"[..],
            b"0123456789ABCDEF",
            b"0123456789abcdeg",
            b"",
        ] {
            assert!(!is_run_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn answers_round_trip() {
        let a = encode_answer(Status::Refused, b"no");
        let (s, b) = read_answer(&mut &a[..], "t").unwrap();
        assert_eq!((s, &b[..]), (Status::Refused, &b"no"[..]));
        let g = encode_gramine_answer(b"k");
        assert_eq!(&read_gramine_answer(&mut &g[..], "t").unwrap()[..], b"k");
        assert!(matches!(
            read_answer(&mut &a[..3], "t"),
            Err(Error::Protocol { .. })
        ));
    }
}
