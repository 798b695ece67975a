//! Body of the `parse_quote` target: untrusted evidence bytes. DCAP quote and simulated-quote
//! parsing must never panic, a parsed DCAP quote must account for every input byte
//! (`len() + trailing_bytes()`), and a parsed simulated quote must re-encode to exactly its input.

use ward_attest::quote::Quote;
use ward_attest::sim::SimQuote;

/// Runs one input; returns what happened, for the replay runner's statistics.
pub fn run(data: &[u8]) -> Vec<String> {
    let dcap = match Quote::parse(data) {
        Ok(q) => {
            assert_eq!(q.len() + q.trailing_bytes(), data.len());
            let _ = q.report_data();
            let _ = q.pck_chain_pem();
            let _ = q.tee();
            "dcap ok".to_string()
        }
        Err(e) => format!("dcap err {}", first_word(&format!("{e:?}"))),
    };
    let sim = match SimQuote::parse(data) {
        Ok(s) => {
            // Whatever parses must re-encode to the same bytes (one encoding per quote).
            assert_eq!(s.to_bytes(), data);
            let _ = s.verify();
            "sim ok".to_string()
        }
        Err(e) => format!("sim err {}", first_word(&format!("{e:?}"))),
    };
    vec![dcap, sim]
}

fn first_word(s: &str) -> &str {
    s.split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("?")
}
