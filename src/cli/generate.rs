//! `pinbook gen`: write a deterministic synthetic ITCH 5.0 BinaryFILE.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dataplane::feed::binaryfile::write_frame;
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};

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
    /// The stream's shape: `touch`, small books near the touch whose working set fits in cache
    /// (a few busy names); `deep`, a real day's working set: every symbol equally busy, ~1,500
    /// live orders per book (1.5 M over 1,000 symbols: `-k 1000 -n 5000000`), cancels,
    /// executions and replaces picking uniformly among live orders, prices over ±5 % of the mid.
    #[arg(long, value_enum, default_value_t = GenProfile::Touch)]
    pub profile: GenProfile,
}

/// `--profile`: see [`Profile`].
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenProfile {
    /// Small books near the touch (the default).
    Touch,
    /// A real day's working set.
    Deep,
}

impl From<GenProfile> for Profile {
    fn from(p: GenProfile) -> Self {
        match p {
            GenProfile::Touch => Profile::Touch,
            GenProfile::Deep => Profile::Deep,
        }
    }
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
    let mut generator = Generator::with_profile(
        GeneratorConfig {
            symbols: args.symbols,
            seed: args.seed,
        },
        args.profile.into(),
    );
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
        "wrote {} messages ({:.1} MiB, profile {:?}) for {} symbols to {} in {:.2?} ({:.1} M msg/s); symbols: {}{}",
        args.messages,
        bytes as f64 / (1 << 20) as f64,
        args.profile,
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
