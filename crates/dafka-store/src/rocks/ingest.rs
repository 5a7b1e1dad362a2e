//! Large synced writes as table files: records reach the disk once.
//!
//! Through the write-ahead log a record is written twice: to the log,
//! synced before the ACK, and again when its memtable is flushed to a table
//! file. For big records that halves the disk bandwidth left for them. So
//! under `fsync = always` a write carrying at least [`INGEST_MIN`] bytes of
//! records builds a table file of its runs itself, syncs it, and has
//! RocksDB adopt the file (`IngestExternalFile`, moved, not copied). One
//! file per partition: a partition's keys only grow, so its file overlaps
//! nothing already stored and goes to the bottom level, where no compaction
//! rewrites it. (A file spanning two partitions would overlap the stored
//! records of every partition whose keys sort between them.)
//!
//! The heads, indexes and sizes of the same write follow in an ordinary
//! synced batch. A crash between the two leaves records past the head,
//! which the producer sends again (same keys, same content); never a head
//! past what is stored.

use super::{io, record_key_partition};
use crate::storage::StorageError;
use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, DB};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The least record content a synced write takes to go as a table file.
/// Below it the log's one sequential append is cheaper than a table
/// file's syncs (the file, its directory and the manifest).
pub(super) const INGEST_MIN: usize = 1 << 20;

/// Where table files are built before RocksDB adopts them: in the
/// database directory (a move is a link, so the same file system), under
/// names RocksDB does not take for its own.
const BUILD_PREFIX: &str = "dafka-ingest-";
const BUILD_SUFFIX: &str = ".tmp";

/// Builds table files and hands them to the database.
pub(super) struct Ingest {
    /// The record family's options: the table file must be written with
    /// its comparator and compression.
    opts: Options,
    dir: PathBuf,
}

impl Ingest {
    /// Removes what a crash may have left from a build in `dir`.
    pub(super) fn new(dir: &Path, opts: &Options) -> Self {
        let leftovers = std::fs::read_dir(dir).into_iter().flatten().flatten();
        for entry in leftovers {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(BUILD_PREFIX) && name.ends_with(BUILD_SUFFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ingest {
            opts: opts.clone(),
            dir: dir.to_path_buf(),
        }
    }

    /// Writes the record keys and values in `entries` as synced table
    /// files, one per partition, that `db` adopts in one step. The map
    /// keeps, of two equal keys, the later value, as a batch would.
    pub(super) fn put(
        &self,
        db: &DB,
        entries: BTreeMap<Vec<u8>, Vec<u8>>,
    ) -> Result<(), StorageError> {
        let mut paths = Vec::new();
        let done = self.build(&entries, &mut paths).and_then(|()| {
            if paths.is_empty() {
                return Ok(());
            }
            let mut how = IngestExternalFileOptions::default();
            how.set_move_files(true);
            db.ingest_external_file_opts(&how, paths.clone())
                .map_err(io("write"))
        });
        if done.is_err() {
            for p in &paths {
                let _ = std::fs::remove_file(p);
            }
        }
        done
    }

    /// One table file per partition (key prefix), in `paths`.
    fn build(
        &self,
        entries: &BTreeMap<Vec<u8>, Vec<u8>>,
        paths: &mut Vec<PathBuf>,
    ) -> Result<(), StorageError> {
        let sorted: Vec<(&Vec<u8>, &Vec<u8>)> = entries.iter().collect();
        let same = |a: &[u8], b: &[u8]| record_key_partition(a) == record_key_partition(b);
        for one in sorted.chunk_by(|(a, _), (b, _)| same(a, b)) {
            let path = self
                .dir
                .join(format!("{BUILD_PREFIX}{}{BUILD_SUFFIX}", paths.len()));
            paths.push(path.clone());
            self.write_file(&path, one)?;
        }
        Ok(())
    }

    fn write_file(
        &self,
        path: &Path,
        entries: &[(&Vec<u8>, &Vec<u8>)],
    ) -> Result<(), StorageError> {
        let mut file = SstFileWriter::create(&self.opts);
        file.open(path).map_err(io("write"))?;
        for (k, v) in entries {
            file.put(k, v).map_err(io("write"))?;
        }
        // Syncs the file before it returns.
        file.finish().map_err(io("write"))
    }
}
