//! A file-sync notifier: one side announces files, the other copies each
//! into place and commits the notification only once the copy is complete
//! and renamed. Kill the copier at any moment and start it again: every
//! file ends up in place, whole, and no file whose notification was
//! committed is copied again.
//!
//! ```sh
//! file_sync announce SRC_DIR             # one notification per file
//! file_sync sync SRC_DIR DEST_DIR [MS]   # copy them; exit after MS ms idle
//! ```
//!
//! Towers and timers come from the usual `DAFKA_*` variables (for example
//! `DAFKA_BEACON__SUB_ADDRESS`). The copier prints `copied NAME` once a
//! file is in place and `committed NAME` once the stores acknowledged it.

use dafka::{Config, Consumer, OffsetReset, Producer, ProducerRecord, Record};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const TOPIC: &str = "files";
const NAME: &str = "file-sync";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cfg = Config::load(None)?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["announce", src] => announce(&cfg, Path::new(src)),
        ["sync", src, dest] => sync(&cfg, Path::new(src), Path::new(dest), None),
        ["sync", src, dest, ms] => {
            let idle = Duration::from_millis(ms.parse()?);
            sync(&cfg, Path::new(src), Path::new(dest), Some(idle))
        }
        _ => Err(
            "usage: file_sync announce SRC_DIR | file_sync sync SRC_DIR DEST_DIR [IDLE_MS]".into(),
        ),
    }
}

/// Publishes "NAME is ready" for every file in `src` and waits until the
/// stores hold every notification.
fn announce(cfg: &Config, src: &Path) -> Result<()> {
    let producer = Producer::new(TOPIC, &cfg.producer, &cfg.beacon)?;
    let mut names: Vec<String> = fs::read_dir(src)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in &names {
        let size = fs::metadata(src.join(name))?.len();
        let r = ProducerRecord::new(format!("{name} is ready"))
            .key(name.clone())
            .header("size", size.to_string());
        producer.send(r)?;
    }
    if !producer.flush(Duration::from_secs(30)) {
        return Err("the stores did not acknowledge every notification".into());
    }
    println!("announced {}", names.len());
    Ok(())
}

/// Copies every announced file into `dest`, committing each notification
/// only after the file is in place.
fn sync(cfg: &Config, src: &Path, dest: &Path, idle: Option<Duration>) -> Result<()> {
    fs::create_dir_all(dest)?;
    let mut ccfg = cfg.consumer.clone();
    ccfg.name = NAME.into();
    ccfg.auto_commit = false; // a notification is done when its file is
    ccfg.offset_reset = OffsetReset::Earliest;
    let consumer = Consumer::new(&ccfg, &cfg.beacon)?;
    consumer.subscribe(TOPIC)?;
    let wait = idle.unwrap_or(Duration::from_secs(3600));
    let mut out = io::stdout().lock();
    while let Ok(r) = consumer.recv_timeout(wait) {
        let name = file_name(&r)?;
        copy_into_place(&src.join(&name), dest, &name)?;
        writeln!(out, "copied {name}")?;
        out.flush()?;
        consumer.commit(&r)?;
        consumer.commit_sync(Duration::from_secs(10))?;
        writeln!(out, "committed {name}")?;
        out.flush()?;
    }
    consumer.close();
    Ok(())
}

/// The file a notification names (its key), refusing anything that is not
/// a plain file name.
fn file_name(r: &Record) -> Result<String> {
    let key = r.key.as_deref().ok_or("a notification without a key")?;
    let name = std::str::from_utf8(key)?.to_string();
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("not a plain file name: {name:?}").into());
    }
    Ok(name)
}

/// Copies `from` to `dest/name` through a temporary name: the file appears
/// whole or not at all, and survives a power cut once this returns.
fn copy_into_place(from: &Path, dest: &Path, name: &str) -> Result<()> {
    let part = dest.join(format!(".{name}.part"));
    {
        let mut f = File::create(&part)?;
        io::copy(&mut File::open(from)?, &mut f)?;
        f.sync_all()?;
    }
    fs::rename(&part, dest.join(name))?;
    File::open(dest)?.sync_all()?;
    Ok(())
}
