//! `pinbook gen`: write a deterministic synthetic ITCH 5.0 BinaryFILE, or the same stream as
//! a Databento DBN MBO file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use dataplane::book::Op;
use dataplane::feed::binaryfile::write_frame;
use dataplane::feed::dbn::write::{self as dbn_write, FromItch, START_NS};
use dataplane::feed::generator::{Generator, GeneratorConfig, Profile};
use dataplane::feed::itch;

/// Arguments of `pinbook gen`.
#[derive(clap::Args, Debug)]
pub struct GenArgs {
    /// The file to write: a NASDAQ BinaryFILE (u16 length, message, repeated), or with
    /// `--format dbn` a DBN MBO file (zstd-compressed when the name ends in `.zst`).
    pub out: PathBuf,
    /// `itch`, or `dbn`: the same stream restated as the MBO records Databento would send for
    /// it (each ITCH message one group; instrument ids are the stock locates; prices × 10^5,
    /// from ITCH's 1e-4 to DBN's 1e-9; executions as trade, fill and cancel; some partial
    /// cancels as modifies). Both build the same books.
    #[arg(long, value_enum, default_value_t = GenFormat::Itch)]
    pub format: GenFormat,
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

/// `--format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenFormat {
    /// NASDAQ ITCH 5.0 BinaryFILE.
    Itch,
    /// Databento DBN, MBO schema.
    Dbn,
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
    let mut generator = Generator::with_profile(
        GeneratorConfig {
            symbols: args.symbols,
            seed: args.seed,
        },
        args.profile.into(),
    );
    let started = Instant::now();
    let what = match args.format {
        GenFormat::Itch => {
            let file = File::create(&args.out)
                .with_context(|| format!("cannot create {}", args.out.display()))?;
            write_itch(
                BufWriter::with_capacity(1 << 20, file),
                &mut generator,
                args.messages,
            )?;
            "ITCH".to_owned()
        }
        GenFormat::Dbn => {
            let records = write_dbn(&mut generator, args)?;
            format!("DBN MBO, {records} records")
        }
    };
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    let elapsed = started.elapsed();
    let names: Vec<&str> = generator.symbol_names().take(8).collect();
    eprintln!(
        "wrote {} messages ({what}, {:.1} MiB, profile {:?}) for {} symbols to {} in {:.2?} ({:.1} M msg/s); symbols: {}{}",
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

/// Writes `messages` ITCH messages as a BinaryFILE.
fn write_itch(mut out: impl Write, generator: &mut Generator, messages: u64) -> Result<()> {
    let mut message = Vec::with_capacity(64);
    for _ in 0..messages - 3 {
        message.clear();
        generator.next_into(&mut message);
        write_frame(&mut out, &message)?;
    }
    for event in generator.closing() {
        write_frame(&mut out, &event)?;
    }
    out.flush().context("cannot write the file")?;
    Ok(())
}

/// Writes the records of `args.messages` ITCH messages as a DBN MBO file (see
/// [`FromItch`]); returns the records written.
fn write_dbn(generator: &mut Generator, args: &GenArgs) -> Result<u64> {
    let symbols: Vec<(String, u32)> = generator
        .symbol_names()
        .zip(1u32..)
        .map(|(name, id)| (name.to_owned(), id))
        .collect();
    let metadata = dbn_write::metadata("PINBOOK.GEN", &symbols, START_NS);
    let mut from_itch = FromItch::new();
    let mut message = Vec::with_capacity(64);
    let mut group = Vec::with_capacity(4);
    let mut bad = None;
    let records = (0..args.messages - 3).flat_map(|_| {
        message.clear();
        generator.next_into(&mut message);
        group.clear();
        match itch::parse(&message) {
            Ok(parsed) => {
                let header = parsed.header();
                from_itch.records(
                    header.stock_locate,
                    &Op::of(&parsed),
                    header.timestamp,
                    &mut group,
                );
            }
            Err(e) => bad = Some(e),
        }
        group.clone()
    });
    let written = dbn_write::write_file(&args.out, &metadata, records)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if let Some(e) = bad {
        bail!("the generator wrote a message that does not parse ({e:?}); this is a bug");
    }
    Ok(written)
}
