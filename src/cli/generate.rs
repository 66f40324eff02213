//! `pinbook gen`: write a deterministic synthetic ITCH 5.0 BinaryFILE.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dataplane::feed::binaryfile::write_frame;
use dataplane::feed::generator::{Generator, GeneratorConfig};

/// Arguments of `pinbook gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// The file to write (NASDAQ BinaryFILE: u16 length, message, repeated).
    pub out: PathBuf,
    /// Total messages, the opening directory and the three closing system events included.
    #[arg(long, short = 'n', default_value_t = 1_000_000)]
    pub messages: u64,
    /// Number of symbols (stock locates 1..=K).
    #[arg(long, short = 'k', default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub symbols: u16,
    /// RNG seed: the same seed, count and symbols give the same file.
    #[arg(long, short = 's', default_value_t = 1)]
    pub seed: u64,
}

/// Writes the file and prints a summary on stderr.
pub fn run(args: &GenArgs) -> Result<()> {
    let opening = 3 + 2 * u64::from(args.symbols);
    if args.messages < opening + 3 {
        bail!(
            "--messages {} is too few for {} symbols: the opening directory and closing events \
             alone take {}; ask for more messages or fewer symbols",
            args.messages,
            args.symbols,
            opening + 3
        );
    }
    let file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut generator = Generator::new(GeneratorConfig {
        symbols: args.symbols,
        seed: args.seed,
    });
    let started = Instant::now();
    let mut message = Vec::with_capacity(64);
    let mut bytes = 0u64;
    for _ in 0..args.messages - 3 {
        message.clear();
        generator.next_into(&mut message);
        write_frame(&mut out, &message)?;
        bytes += 2 + message.len() as u64;
    }
    for event in generator.closing() {
        write_frame(&mut out, &event)?;
        bytes += 2 + event.len() as u64;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let elapsed = started.elapsed();
    let names: Vec<&str> = generator.symbol_names().take(8).collect();
    eprintln!(
        "wrote {} messages ({:.1} MiB) for {} symbols to {} in {:.2?} ({:.1} M msg/s); symbols: {}{}",
        args.messages,
        bytes as f64 / (1 << 20) as f64,
        args.symbols,
        args.out.display(),
        elapsed,
        args.messages as f64 / elapsed.as_secs_f64() / 1e6,
        names.join(","),
        if args.symbols as usize > names.len() {
            ",…"
        } else {
            ""
        },
    );
    Ok(())
}
