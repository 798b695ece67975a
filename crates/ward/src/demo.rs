//! `ward demo`: the protected-files steps of the tutorial ("Encrypt Input Files" and "Decrypt
//! the Output File"), narrated, in a temporary directory.

use crate::pf;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Args)]
pub struct DemoArgs {
    /// Encrypt this file instead of a generated 8 MiB sample.
    #[arg(long, value_name = "PATH")]
    input: Option<PathBuf>,
    /// Keep the working files in DIR (created; must be empty or absent) instead of a temporary
    /// directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

struct Narrator {
    step: usize,
    start: Instant,
}

impl Narrator {
    fn step<T>(&mut self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.step += 1;
        println!("\n[{}] {what}", self.step);
        let t = Instant::now();
        let out = f()?;
        println!("    done in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        Ok(out)
    }
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    let tmp;
    let dir: &Path = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            if std::fs::read_dir(d)?.next().is_some() {
                bail!(
                    "{} is not empty; give --keep an empty or new directory",
                    d.display()
                );
            }
            d
        }
        None => {
            tmp = tempfile::tempdir().context("creating a temporary directory")?;
            tmp.path()
        }
    };
    println!("ward demo: protected files, as in the tutorial's \"Encrypt Input Files\" and");
    println!(
        "\"Decrypt the Output File\" steps. Working in {}",
        dir.display()
    );
    let mut n = Narrator {
        step: 0,
        start: Instant::now(),
    };

    let input = match &args.input {
        Some(p) => p.clone(),
        None => {
            let p = dir.join("input.bin");
            n.step(
                "generate an 8 MiB sample input (stands in for a model)",
                || {
                    let data: Vec<u8> = (0..8u32 << 20)
                        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                        .collect();
                    std::fs::write(&p, data).context("writing the sample")
                },
            )?;
            p
        }
    };
    let key = dir.join("wrap_key");
    let new_key = dir.join("wrap_key.new");
    let enc = dir.join("input.pf");
    let dec = dir.join("input.decrypted");

    n.step(
        "ward pf keygen -o wrap_key   (16 random bytes, mode 0600)",
        || pf::keygen(&key).map(drop),
    )?;
    let wrap = pf::load_key(&key)?;
    let bound = n.step(
        "ward pf encrypt -w wrap_key -i INPUT -o input.pf   (written, verified, renamed)",
        || pf::encrypt_file(&wrap, &input, &enc, &enc.to_string_lossy(), true, 0),
    )?;
    n.step("ward pf info -w wrap_key -i input.pf", || {
        pf::info(Some(&key), &enc).map(drop)
    })?;
    n.step(
        "tamper with a copy (flip one bit in the last node) and verify it",
        || {
            let bad = dir.join("tampered.pf");
            let mut bytes = std::fs::read(&enc)?;
            let last = bytes.len() - 100;
            bytes[last] ^= 1;
            std::fs::write(&bad, bytes)?;
            match ward_pf::verify(&std::fs::File::open(&bad)?, &wrap, None, Default::default()) {
                Ok(_) => bail!("a tampered file verified: this is a bug"),
                Err(e) => println!("    refused, as it must be: {e}"),
            }
            Ok(())
        },
    )?;
    n.step("ward pf keygen -o wrap_key.new; ward pf rewrap -w wrap_key --new-key wrap_key.new -i input.pf", || {
        pf::keygen(&new_key)?;
        pf::rewrap(&key, &new_key, &enc, None).map(drop)
    })?;
    let wrap = pf::load_key(&new_key)?;
    n.step(
        "ward pf decrypt -w wrap_key.new -i input.pf -o input.decrypted -V",
        || pf::decrypt_file(&wrap, &enc, &dec, Some(&bound), 0),
    )?;
    n.step("compare the decrypted file with the input", || {
        if std::fs::read(&input)? != std::fs::read(&dec)? {
            bail!("the round trip changed the data: this is a bug");
        }
        println!("    identical");
        Ok(())
    })?;
    println!(
        "\nall steps passed in {:.1} ms{}",
        n.start.elapsed().as_secs_f64() * 1e3,
        if args.keep.is_some() {
            format!("; files kept in {}", dir.display())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
