//! `callfleet snapshot create` and `callfleet snapshot restore`: one file with this binary,
//! the cluster-wide settings and the sounds (format: the `callfleet-snapshots` crate), and a
//! new node installed and started from it.

mod settings;
mod start;

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use callfleet_snapshots::{EntryPath, Input, Layout, Manifest, Source};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Config;

pub use settings::{cluster_settings, node_config, Identity};

/// `callfleet snapshot ...`
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write a snapshot of this node: the running binary, the cluster-wide settings of its
    /// config (no node name, role or addresses), music on hold and prompts.
    Create {
        /// The config of the node to take the settings and sounds from.
        #[arg(long, short)]
        config: PathBuf,
        /// The snapshot file to write (replaced if it exists).
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a snapshot, install it as a new node, write the node's config and start it.
    Restore(RestoreArgs),
}

/// `callfleet snapshot restore FILE ...`
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Name of the new node, unique in the cluster.
    #[arg(long)]
    pub name: String,
    /// main or extra.
    #[arg(long)]
    pub role: String,
    /// SIP address the node listens on and carriers reach it at: IP or IP:PORT (port 5060).
    #[arg(long)]
    pub sip: String,
    /// HTTP address: IP or IP:PORT (default: the SIP address's IP, port 8080).
    #[arg(long)]
    pub http: Option<String>,
    /// Calls this node takes at most (default: the capacity in the snapshot).
    #[arg(long)]
    pub capacity: Option<u32>,
    /// Install under this folder instead of / (ROOT/usr/local/bin, ROOT/etc/callfleet, ...).
    #[arg(long, default_value = "/")]
    pub root: PathBuf,
    /// Install and configure, but do not start the node.
    #[arg(long)]
    pub no_start: bool,
    /// Replace an existing node configuration at ROOT/etc/callfleet/callfleet.toml.
    #[arg(long)]
    pub force: bool,
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    match action {
        Action::Create { config, out } => {
            tokio::task::spawn_blocking(move || create(&config, &out))
                .await
                .context("snapshot create stopped")?
        }
        Action::Restore(args) => restore(args).await,
    }
}

/// A progress bar on stderr, or a hidden one when stderr is not a terminal.
fn bar(len: u64, message: &'static str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>12} [{bar:32}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// The running executable: `/proc/self/exe` on Linux (still readable when the file was
/// replaced on disk since it started), else its path.
fn running_binary() -> anyhow::Result<PathBuf> {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().context("find the running executable")
}

/// `*.wav` regular files of `dir` as inputs; other files are left out with a warning, a
/// missing folder gives none.
fn sounds(
    dir: &Path,
    entry: impl Fn(&str) -> Result<EntryPath, callfleet_snapshots::PathError>,
) -> anyhow::Result<Vec<Input>> {
    let list = match fs::read_dir(dir) {
        Ok(list) => list,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "warning: {} does not exist: no sounds from it",
                dir.display()
            );
            return Ok(Vec::new());
        }
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    let mut inputs = Vec::new();
    for item in list {
        let item = item.with_context(|| format!("list {}", dir.display()))?;
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".wav") {
            continue;
        }
        // metadata() follows links: a link to a WAV file is packed as the file it names.
        let is_file = fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false);
        match entry(&name) {
            Ok(entry) if is_file => inputs.push(Input {
                path: entry,
                source: Source::File(path),
            }),
            Ok(_) => eprintln!("warning: {} is not a file: left out", path.display()),
            Err(e) => eprintln!("warning: {}: left out ({e})", path.display()),
        }
    }
    inputs.sort_by(|a, b| a.path.as_str().cmp(b.path.as_str()));
    Ok(inputs)
}

/// The music on hold: `dir/*.wav` (the default class) and `dir/CLASS/*.wav` of each class.
fn music(dir: &Path) -> anyhow::Result<Vec<Input>> {
    let mut inputs = sounds(dir, EntryPath::moh)?;
    let Ok(list) = fs::read_dir(dir) else {
        return Ok(inputs);
    };
    let mut classes: Vec<(String, PathBuf)> = list
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    classes.sort();
    for (class, path) in classes {
        inputs.extend(sounds(&path, |name| EntryPath::moh_class(&class, name))?);
    }
    Ok(inputs)
}

/// `callfleet snapshot create --config FILE --out FILE`.
pub fn create(config_path: &Path, out: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(config_path)
        .with_context(|| format!("load config {}", config_path.display()))?;
    if cfg.database.url.starts_with("sqlite:") {
        eprintln!(
            "warning: the database is SQLite ({}): a node restored on another host will not \
             share it; use PostgreSQL for a cluster of several hosts",
            cfg.database.url
        );
    }
    let settings = cluster_settings(&cfg)?;
    let mut inputs = vec![
        Input {
            path: EntryPath::binary(),
            source: Source::File(running_binary()?),
        },
        Input {
            path: EntryPath::cluster_config(),
            source: Source::Bytes(settings.into_bytes()),
        },
    ];
    inputs.extend(music(&cfg.media.moh_dir)?);
    inputs.extend(sounds(&cfg.media.prompts_dir, EntryPath::prompt)?);
    let total: u64 = inputs
        .iter()
        .map(|i| match &i.source {
            Source::File(p) => fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Source::Bytes(b) => b.len() as u64,
        })
        .sum();
    let progress = bar(2 * total, "snapshot");
    let partial = partial_path(out);
    let result = write_snapshot(&inputs, &partial, out, &progress);
    progress.finish_and_clear();
    let manifest = match result {
        Ok(manifest) => manifest,
        Err(e) => {
            if let Err(remove) = fs::remove_file(&partial) {
                if remove.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("warning: cannot remove {}: {remove}", partial.display());
                }
            }
            return Err(e);
        }
    };
    print_created(out, &manifest);
    Ok(())
}

/// `DIR/.NAME.partial`: where a snapshot is written before it is renamed into place.
fn partial_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "snapshot".into());
    out.with_file_name(format!(".{name}.partial"))
}

fn write_snapshot(
    inputs: &[Input],
    partial: &Path,
    out: &Path,
    progress: &ProgressBar,
) -> anyhow::Result<Manifest> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        // It holds the database URL and the cluster secret.
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options
        .open(partial)
        .with_context(|| format!("create {}", partial.display()))?;
    let (manifest, file) = callfleet_snapshots::pack(
        inputs,
        env!("CARGO_PKG_VERSION"),
        crate::now_ms(),
        std::io::BufWriter::new(file),
        callfleet_snapshots::DEFAULT_LEVEL,
        |n| progress.inc(n),
    )
    .context("make the snapshot")?;
    let file = file
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("write {}", partial.display()))?;
    file.sync_all()
        .with_context(|| format!("write {}", partial.display()))?;
    fs::rename(partial, out)
        .with_context(|| format!("rename {} to {}", partial.display(), out.display()))?;
    Ok(manifest)
}

fn print_created(out: &Path, manifest: &Manifest) {
    use callfleet_snapshots::Kind;
    let count = |kind| {
        manifest
            .entries()
            .iter()
            .filter(|e| e.path.kind() == kind)
            .count()
    };
    let size = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "snapshot {}: callfleet {}, {} files ({:.1} MB: the binary, the cluster settings, {} \
         music on hold, {} prompts), {:.1} MB compressed",
        out.display(),
        manifest.callfleet_version,
        manifest.entries().len(),
        manifest.total_size() as f64 / 1e6,
        count(Kind::Moh),
        count(Kind::Prompt),
        size as f64 / 1e6
    );
}

/// `callfleet snapshot restore FILE ...`.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let identity = Identity::parse(
        &args.name,
        &args.role,
        &args.sip,
        args.http.as_deref(),
        args.capacity,
    )?;
    // Absolute: the config names the media folders, and the node runs in its state folder.
    let root = std::path::absolute(&args.root)
        .with_context(|| format!("--root {}", args.root.display()))?;
    let layout = Layout::new(root);
    let file = args.file.clone();
    let verified = tokio::task::spawn_blocking(move || verify(&file))
        .await
        .context("snapshot verification stopped")?
        .with_context(|| {
            format!(
                "snapshot {} refused, nothing was installed",
                args.file.display()
            )
        })?;
    let (text, cfg) = node_config(&verified.cluster_config, &identity, &layout)
        .context("nothing was installed")?;
    start::preflight(&layout, &cfg, args.force, !args.no_start)
        .await
        .context("nothing was installed")?;
    let (file, install_layout) = (args.file.clone(), layout.clone());
    tokio::task::spawn_blocking(move || install(&file, &install_layout, &text))
        .await
        .context("snapshot install stopped")??;
    println!(
        "installed callfleet {} under {} as {} node {} (SIP {}, HTTP {}), config {}",
        verified.manifest.callfleet_version,
        layout.root().display(),
        identity.role,
        identity.name,
        identity.sip,
        identity.http,
        layout.config().display()
    );
    if args.no_start {
        println!("not started (--no-start)");
        return Ok(());
    }
    let pid = start::start(&layout, &cfg).await?;
    println!(
        "node {} is up (pid {pid}, log {}), {:.1} s after the restore began; it joins the \
         cluster with its heartbeat",
        identity.name,
        layout.log_file().display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads the whole snapshot and checks it, writing nothing.
fn verify(file: &Path) -> anyhow::Result<callfleet_snapshots::Verified> {
    let input = File::open(file).with_context(|| format!("open {}", file.display()))?;
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = bar(len, "verify");
    let verified = callfleet_snapshots::verify(std::io::BufReader::new(input), |n| progress.inc(n));
    progress.finish_and_clear();
    Ok(verified?)
}

/// Suffix of the files a restore writes before renaming them into place.
const RESTORING: &str = "callfleet-restore";

fn restoring(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{RESTORING}"));
    path.with_file_name(name)
}

/// Installs the verified snapshot: folders, every file under a temporary name (checked
/// again as it is written), then each renamed into place, and the node's config.
fn install(file: &Path, layout: &Layout, config_text: &str) -> anyhow::Result<()> {
    for dir in layout.dirs() {
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let input = File::open(file).with_context(|| format!("open {}", file.display()))?;
    let len = input.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = bar(len, "install");
    let placed = callfleet_snapshots::unpack(
        std::io::BufReader::new(input),
        |n| progress.inc(n),
        |entry| {
            let temp = restoring(&layout.place(&entry.path)?);
            // A music class's folder; a failure shows as the file's own write error.
            if let Some(parent) = temp.parent() {
                if let Err(e) = fs::create_dir_all(parent) {
                    eprintln!("warning: cannot create {}: {e}", parent.display());
                }
            }
            // A file left by an interrupted restore.
            if fs::remove_file(&temp).is_err() && temp.exists() {
                eprintln!("warning: cannot remove {}", temp.display());
            }
            Some(temp)
        },
    );
    progress.finish_and_clear();
    let placed = placed.with_context(|| {
        format!(
            "snapshot {} changed or could not be written while installing",
            file.display()
        )
    })?;
    for p in &placed {
        let Some(dest) = layout.place(&p.entry) else {
            continue;
        };
        fs::rename(&p.path, &dest)
            .with_context(|| format!("rename {} to {}", p.path.display(), dest.display()))?;
    }
    write_config(&layout.config(), config_text)
}

/// Writes the node's config (mode 0640: it holds the secret and the database URL) through a
/// temporary file renamed into place.
fn write_config(path: &Path, text: &str) -> anyhow::Result<()> {
    let temp = restoring(path);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o640);
    }
    let mut file = options
        .open(&temp)
        .with_context(|| format!("create {}", temp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("write {}", temp.display()))?;
    fs::rename(&temp, path)
        .with_context(|| format!("rename {} to {}", temp.display(), path.display()))
}
