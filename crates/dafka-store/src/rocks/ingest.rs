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
//! rewrites it.
//!
//! The heads, indexes and sizes of the same write follow in an ordinary
//! synced batch. A crash between the two leaves records past the head,
//! which the producer sends again (same keys, same content); never a head
//! past what is stored.

use super::{io, record_key_partition};
use crate::storage::StorageError;
use rocksdb::{IngestExternalFileOptions, Options, SstFileWriter, DB};
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

    /// A set of table files to build, keys in order, that the database
    /// then adopts in one step.
    pub(super) fn files(&self) -> Files<'_> {
        Files {
            ingest: self,
            paths: Vec::new(),
            open: None,
        }
    }
}

/// Table files being built, one per partition: each value goes into its
/// file as it is made, so a write never holds its records twice (a
/// second copy was up to 8 MiB of fresh pages, every write). What is not
/// adopted is removed.
pub(super) struct Files<'a> {
    ingest: &'a Ingest,
    paths: Vec<PathBuf>,
    /// The file being written, and the key prefix of its partition.
    open: Option<(Vec<u8>, SstFileWriter<'a>)>,
}

impl Files<'_> {
    /// Adds a record key and its value. Keys come in order; a partition
    /// other than the last one's starts a new file. (A file spanning two
    /// partitions would overlap the stored records of every partition
    /// whose keys sort between them.)
    pub(super) fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), StorageError> {
        let partition = record_key_partition(key);
        if self.open.as_ref().is_none_or(|(p, _)| p != partition) {
            self.finish()?;
            let path = self
                .ingest
                .dir
                .join(format!("{BUILD_PREFIX}{}{BUILD_SUFFIX}", self.paths.len()));
            self.paths.push(path.clone());
            let file = SstFileWriter::create(&self.ingest.opts);
            file.open(&path).map_err(io("write"))?;
            self.open = Some((partition.to_vec(), file));
        }
        match &mut self.open {
            Some((_, file)) => file.put(key, value).map_err(io("write")),
            None => Ok(()),
        }
    }

    /// Finishes the open file; it is synced before this returns.
    fn finish(&mut self) -> Result<(), StorageError> {
        match self.open.take() {
            Some((_, mut file)) => file.finish().map_err(io("write")),
            None => Ok(()),
        }
    }

    /// Has `db` adopt the files (moved, not copied).
    pub(super) fn adopt(mut self, db: &DB) -> Result<(), StorageError> {
        self.finish()?;
        if self.paths.is_empty() {
            return Ok(());
        }
        let mut how = IngestExternalFileOptions::default();
        how.set_move_files(true);
        db.ingest_external_file_opts(&how, self.paths.clone())
            .map_err(io("write"))?;
        self.paths.clear();
        Ok(())
    }
}

impl Drop for Files<'_> {
    fn drop(&mut self) {
        self.open = None;
        for p in &self.paths {
            let _ = std::fs::remove_file(p);
        }
    }
}
