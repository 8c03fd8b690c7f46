//! `heapscope timeline`

use std::path::PathBuf;

/// Chart live heap and linear memory over the run (SVG).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  heapscope timeline heapscope.trace -o timeline.svg

Exit status:
  0    SVG written
  2    the trace cannot be read or the output cannot be written")]
pub struct Opts {
    /// The trace written by `heapscope run`.
    trace: PathBuf,
    /// Where to write the SVG (`-`: stdout).
    #[arg(short, long, value_name = "FILE", default_value = "timeline.svg")]
    output: PathBuf,
    /// Width and height in pixels.
    #[arg(long, value_name = "W,H", default_value = "1200,400", value_parser = parse_dims)]
    size: (u32, u32),
}

fn parse_dims(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}` is not W,H (for example 1200,400)");
    let (w, h) = s.split_once(',').ok_or_else(bad)?;
    let (w, h) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if !(100..=20_000).contains(&w) || !(100..=20_000).contains(&h) {
        return Err(format!("`{s}`: width and height must be 100 to 20000"));
    }
    Ok((w, h))
}

impl Opts {
    /// Run the command.
    pub fn run(self) -> anyhow::Result<u8> {
        super::run::check_outputs(&[("the trace", &self.trace)], &[("-o", &self.output)])?;
        let a = super::analyze(&self.trace)?;
        let svg = heapscope_viewer::timeline::svg(&a, self.size.0, self.size.1)
            .map_err(anyhow::Error::msg)?;
        super::write_output(&self.output, "timeline", |w| w.write_all(svg.as_bytes()))?;
        Ok(0)
    }
}
