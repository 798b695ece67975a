//! Body of the `provision_protocol` target: the provisioning protocol's parsers on attacker bytes
//! (`ward_provision::protocol`). The server's request parser reads a client's bytes after a
//! handshake that applied no policy yet; the client's answer parsers read whatever a server (or
//! whoever answers in its place) sends.
//!
//! Every input is, at once:
//! 1. a request stream for `read_request`, under the default 4096-byte limit and under a small
//!    limit taken from the input;
//! 2. an answer stream for `read_answer` (read repeatedly, as the client reads one answer per
//!    name) and for `read_gramine_answer`;
//! 3. edits to a real granted answer carrying a known secret (both protocols): truncate it,
//!    change one byte.
//!
//! And these must hold:
//! - nothing panics, every error displays;
//! - whatever parses re-encodes to exactly the bytes it consumed (`encode_ward_request`,
//!   `encode_answer`, `encode_gramine_answer`), and a request never exceeds the limit;
//! - a request rejected as a whole ([`BadRequest::Reject`]) began with the ward header;
//! - no error's text (the whole chain) contains the secret, as text or hex.

use std::sync::OnceLock;
use ward_provision::protocol::{
    encode_answer, encode_gramine_answer, encode_ward_request, read_answer, read_gramine_answer,
    read_request, BadRequest, Request, Status, GRAMINE_REQUEST, WARD_REQUEST,
};

/// The secret of the answers built in mode 3.
pub const SECRET: &[u8] = b"fuzz-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(" / ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn assert_no_secret(text: &str) {
    let secret = std::str::from_utf8(SECRET).expect("ASCII");
    assert!(
        !text.contains(secret) && !text.contains(&hex::encode(SECRET)),
        "the secret appears in an error: {text}"
    );
}

fn server(data: &[u8], max: usize) -> String {
    let mut rest = data;
    let got = runtime().block_on(read_request(&mut rest, max));
    let consumed = &data[..data.len() - rest.len()];
    match got {
        Ok(Request::Gramine) => {
            assert_eq!(
                consumed, GRAMINE_REQUEST,
                "a Gramine request of other bytes"
            );
            "gramine".into()
        }
        Ok(Request::Ward(names)) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let again = encode_ward_request(&names).expect("a parsed request re-encodes");
            assert_eq!(
                again, consumed,
                "a parsed request re-encodes to other bytes"
            );
            assert!(
                consumed.len() <= max,
                "a request over the limit was accepted"
            );
            "ward".into()
        }
        Err(BadRequest::Reject(reason)) => {
            assert!(
                data.starts_with(WARD_REQUEST),
                "rejected a non-ward request"
            );
            assert!(!reason.is_empty());
            "reject".into()
        }
        Err(BadRequest::Close(reason)) => {
            assert!(!reason.is_empty());
            "close".into()
        }
        // BadRequest may grow variants.
        #[allow(unreachable_patterns)]
        Err(_) => "other".into(),
    }
}

fn kind(e: &ward_provision::Error) -> String {
    let dbg = format!("{e:?}");
    dbg.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
        .to_string()
}

fn client(data: &[u8]) -> (String, String) {
    let mut rest = data;
    let mut answers = 0;
    let ward = loop {
        let before = rest;
        match read_answer(&mut rest, "fuzz") {
            Ok((status, body)) => {
                let consumed = &before[..before.len() - rest.len()];
                assert_eq!(&encode_answer(status, &body)[..], consumed);
                answers += 1;
                if rest.is_empty() || answers == 64 {
                    break format!("{answers} answers");
                }
            }
            Err(e) => {
                let _ = chain(&e);
                break format!("{answers} answers, then {}", kind(&e));
            }
        }
    };
    let mut rest = data;
    let gramine = match read_gramine_answer(&mut rest, "fuzz") {
        Ok(secret) => {
            let consumed = &data[..data.len() - rest.len()];
            assert_eq!(&encode_gramine_answer(&secret)[..], consumed);
            "ok".into()
        }
        Err(e) => {
            let _ = chain(&e);
            kind(&e)
        }
    };
    (ward, gramine)
}

/// Mode 3: a real answer carrying [`SECRET`], cut and changed as the input says.
fn secret_answers(data: &[u8]) {
    let (cut, at, x) = match data {
        [a, b, c, d, ..] => (u16::from_le_bytes([*a, *b]) as usize, *c as usize, *d),
        _ => return,
    };
    for answer in [
        encode_answer(Status::Granted, SECRET),
        encode_gramine_answer(SECRET),
    ] {
        let mut bytes = answer.to_vec();
        bytes.truncate(cut % (bytes.len() + 1));
        if let Some(b) = bytes.get_mut(at % 48) {
            *b ^= x;
        }
        if let Err(e) = read_answer(&mut &bytes[..], "fuzz") {
            assert_no_secret(&chain(&e));
            assert_no_secret(&format!("{e:?}"));
        }
        if let Err(e) = read_gramine_answer(&mut &bytes[..], "fuzz") {
            assert_no_secret(&chain(&e));
            assert_no_secret(&format!("{e:?}"));
        }
    }
}

/// Runs one input; returns what happened, for the replay runner's statistics.
pub fn run(data: &[u8]) -> Vec<String> {
    let small = WARD_REQUEST.len() + 4 + data.first().map_or(0, |b| *b as usize);
    let big = server(data, 4096);
    let limited = server(data, small);
    let (ward, gramine) = client(data);
    secret_answers(data);
    vec![
        format!("request {big}"),
        format!("request (small limit) {limited}"),
        format!("answers {ward}"),
        format!("gramine answer {gramine}"),
    ]
}
