//! A simulated, fault-injecting implementation of [`StoreFs`] for crash tests.
//!
//! Files live in memory as two images: `current` (what a running process reads back, i.e.
//! the page cache) and `durable` (what survived the last `sync_data`), plus the log of writes
//! made since that sync. Faults:
//!
//! * **crash at the n-th operation** ([`SimFs::crash_after`]): that write is torn at a random
//!   byte and the filesystem refuses every later operation, as a killed process would see;
//! * **reboot** ([`SimFs::reboot`]): after a *process kill* every completed write survives
//!   (the page cache outlives the process) but is still unsynced; after a *power loss* every
//!   file falls back to its durable image plus a random prefix of its unsynced writes, the
//!   last one torn;
//! * **bit flip** ([`SimFs::flip_random_bit`]) in a file's stored bytes.
//!
//! Directory operations (create, rename, remove) are treated as immediately durable, which is
//! what the std implementation ensures for renames by syncing the directory.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::io::{AlignedBuf, OpenMode, StoreFile, StoreFs};

/// A small deterministic PRNG (splitmix64) so that every failure is replayable by seed.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SimRng(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A value in `0..n` (0 when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct SimFileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    unsynced: Vec<Op>,
    modified_ms: i64,
}

fn apply(image: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { offset, data } => {
            let end = *offset as usize + data.len();
            if image.len() < end {
                image.resize(end, 0);
            }
            image[*offset as usize..end].copy_from_slice(data);
        }
        Op::SetLen(len) => image.resize(*len as usize, 0),
    }
}

#[derive(Debug)]
struct SimState {
    files: BTreeMap<PathBuf, SimFileData>,
    dirs: BTreeSet<PathBuf>,
    rng: SimRng,
    ops_until_crash: Option<u64>,
    crashed: bool,
    ops: u64,
    disk_used_ratio: f64,
    now_ms: i64,
}

/// How the simulated machine went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebootKind {
    /// The process died; the OS kept everything written.
    ProcessKill,
    /// The machine lost power; only synced data is sure to be there.
    PowerLoss,
}

/// The simulated filesystem; clones share state.
#[derive(Debug, Clone)]
pub struct SimFs(Rc<RefCell<SimState>>);

/// A file of a [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    path: PathBuf,
}

fn crashed_err() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

impl SimFs {
    /// An empty filesystem with a seeded fault generator.
    pub fn new(seed: u64) -> Self {
        SimFs(Rc::new(RefCell::new(SimState {
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            rng: SimRng::new(seed),
            ops_until_crash: None,
            crashed: false,
            ops: 0,
            disk_used_ratio: 0.1,
            now_ms: 0,
        })))
    }

    /// Crash at the `n`-th write/sync/set_len/rename from now (0 = the next one).
    pub fn crash_after(&self, n: u64) {
        self.0.borrow_mut().ops_until_crash = Some(n);
    }

    /// Whether the simulated process has crashed.
    pub fn is_crashed(&self) -> bool {
        self.0.borrow().crashed
    }

    /// Mutating operations performed so far.
    pub fn ops(&self) -> u64 {
        self.0.borrow().ops
    }

    /// Sets what [`StoreFs::disk_used_ratio`] reports.
    pub fn set_disk_used_ratio(&self, ratio: f64) {
        self.0.borrow_mut().disk_used_ratio = ratio;
    }

    /// Sets the clock used for file modification times.
    pub fn set_now_ms(&self, now_ms: i64) {
        self.0.borrow_mut().now_ms = now_ms;
    }

    /// Brings the machine back after a crash (or a clean stop, for `ProcessKill`).
    pub fn reboot(&self, kind: RebootKind) {
        let mut st = self.0.borrow_mut();
        let SimState { files, rng, .. } = &mut *st;
        for file in files.values_mut() {
            match kind {
                // The page cache outlives the process: completed writes stay readable, and
                // stay unsynced (a later power loss can still take them).
                RebootKind::ProcessKill => continue,
                RebootKind::PowerLoss => {
                    let mut image = file.durable.clone();
                    let keep = rng.below(file.unsynced.len() as u64 + 1) as usize;
                    for (i, op) in file.unsynced.iter().take(keep).enumerate() {
                        match op {
                            Op::Write { offset, data } if i + 1 == keep => {
                                let cut = rng.below(data.len() as u64 + 1) as usize;
                                apply(
                                    &mut image,
                                    &Op::Write {
                                        offset: *offset,
                                        data: data[..cut].to_vec(),
                                    },
                                );
                            }
                            op => apply(&mut image, op),
                        }
                    }
                    file.current = image;
                }
            }
            file.durable = file.current.clone();
            file.unsynced.clear();
        }
        st.crashed = false;
        st.ops_until_crash = None;
    }

    /// Flips one random bit among the bytes `range` of the file at `path` (durable and
    /// current images alike). Returns the flipped byte position, if the range is not empty.
    pub fn flip_random_bit(&self, path: &Path, range: std::ops::Range<u64>) -> Option<u64> {
        let mut st = self.0.borrow_mut();
        let SimState { files, rng, .. } = &mut *st;
        let file = files.get_mut(path)?;
        let end = range.end.min(file.current.len() as u64);
        if range.start >= end {
            return None;
        }
        let at = range.start + rng.below(end - range.start);
        let bit = 1u8 << rng.below(8);
        file.current[at as usize] ^= bit;
        if let Some(b) = file.durable.get_mut(at as usize) {
            *b ^= bit;
        }
        Some(at)
    }

    /// A copy of a file's current bytes.
    pub fn read_all(&self, path: &Path) -> Option<Vec<u8>> {
        self.0.borrow().files.get(path).map(|f| f.current.clone())
    }

    /// Paths of all files.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.0.borrow().files.keys().cloned().collect()
    }

    /// Counts a mutating operation; `Err` if dead, `Ok(true)` if this one must crash.
    fn tick(&self) -> io::Result<bool> {
        let mut st = self.0.borrow_mut();
        if st.crashed {
            return Err(crashed_err());
        }
        st.ops += 1;
        match st.ops_until_crash {
            Some(0) => {
                st.crashed = true;
                Ok(true)
            }
            Some(n) => {
                st.ops_until_crash = Some(n - 1);
                Ok(false)
            }
            None => Ok(false),
        }
    }

    fn with_file<R>(
        &self,
        path: &Path,
        f: impl FnOnce(&mut SimFileData, &mut SimRng) -> R,
    ) -> io::Result<R> {
        let mut st = self.0.borrow_mut();
        let SimState {
            files, rng, now_ms, ..
        } = &mut *st;
        let file = files.get_mut(path).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display()))
        })?;
        file.modified_ms = *now_ms;
        Ok(f(file, rng))
    }
}

impl StoreFs for SimFs {
    type File = SimFile;

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<SimFile> {
        let mut st = self.0.borrow_mut();
        if st.crashed {
            return Err(crashed_err());
        }
        if !st.files.contains_key(path) {
            if !mode.create {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}", path.display()),
                ));
            }
            let now_ms = st.now_ms;
            st.files.insert(
                path.to_path_buf(),
                SimFileData {
                    modified_ms: now_ms,
                    ..SimFileData::default()
                },
            );
        }
        Ok(SimFile {
            fs: self.clone(),
            path: path.to_path_buf(),
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.borrow_mut();
        if st.crashed {
            return Err(crashed_err());
        }
        st.files
            .remove(path)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display())))
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let st = self.0.borrow();
        let mut names = BTreeSet::new();
        let children = st
            .files
            .keys()
            .chain(st.dirs.iter())
            .filter_map(|p| p.strip_prefix(path).ok())
            .filter_map(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        names.extend(children);
        if names.is_empty() && !st.dirs.contains(path) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}", path.display()),
            ));
        }
        Ok(names.into_iter().collect())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.0.borrow_mut();
        for dir in path.ancestors() {
            st.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    fn lock_exclusive(&self, _path: &Path) -> io::Result<Box<dyn std::any::Any>> {
        // One simulated process at a time: nothing to exclude.
        Ok(Box::new(()))
    }

    fn sync_dir(&self, _path: &Path) -> io::Result<()> {
        // Directory operations are durable at once in the simulation.
        if self.is_crashed() {
            return Err(crashed_err());
        }
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        // A crash point: a crash here leaves the rename undone.
        if self.tick()? {
            return Err(crashed_err());
        }
        let mut st = self.0.borrow_mut();
        let mut file = st.files.remove(from).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{}", from.display()))
        })?;
        // A rename publishes what the file holds; callers sync the file first.
        file.durable = file.current.clone();
        file.unsynced.clear();
        st.files.insert(to.to_path_buf(), file);
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        let st = self.0.borrow();
        st.files.contains_key(path) || st.dirs.contains(path)
    }

    fn disk_used_ratio(&self, _path: &Path) -> io::Result<f64> {
        Ok(self.0.borrow().disk_used_ratio)
    }

    fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        self.0
            .borrow()
            .files
            .get(path)
            .map(|f| f.modified_ms)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display())))
    }
}

impl StoreFile for SimFile {
    async fn write_at(
        &self,
        buf: AlignedBuf,
        len: usize,
        offset: u64,
    ) -> (AlignedBuf, io::Result<()>) {
        let crash = match self.fs.tick() {
            Ok(crash) => crash,
            Err(e) => return (buf, Err(e)),
        };
        let data = &buf[..len.min(buf.len())];
        let result = self.fs.with_file(&self.path, |file, rng| {
            let data = if crash {
                &data[..rng.below(data.len() as u64 + 1) as usize]
            } else {
                data
            };
            let op = Op::Write {
                offset,
                data: data.to_vec(),
            };
            apply(&mut file.current, &op);
            file.unsynced.push(op);
        });
        match (result, crash) {
            (Err(e), _) => (buf, Err(e)),
            (Ok(()), true) => (buf, Err(crashed_err())),
            (Ok(()), false) => (buf, Ok(())),
        }
    }

    async fn read_at(&self, mut buf: Vec<u8>, offset: u64) -> (Vec<u8>, io::Result<usize>) {
        if self.fs.is_crashed() {
            return (buf, Err(crashed_err()));
        }
        let st = self.fs.0.borrow();
        let Some(file) = st.files.get(&self.path) else {
            return (
                buf,
                Err(io::Error::new(io::ErrorKind::NotFound, "file removed")),
            );
        };
        let start = (offset as usize).min(file.current.len());
        let n = buf.len().min(file.current.len() - start);
        buf[..n].copy_from_slice(&file.current[start..start + n]);
        (buf, Ok(n))
    }

    async fn sync_data(&self) -> io::Result<()> {
        if self.fs.tick()? {
            return Err(crashed_err());
        }
        self.fs.with_file(&self.path, |file, _| {
            file.durable = file.current.clone();
            file.unsynced.clear();
        })
    }

    async fn allocate(&self, len: u64) -> io::Result<()> {
        if self.fs.is_crashed() {
            return Err(crashed_err());
        }
        // Preallocation changes no content a reader can see beyond zeros; treat it as
        // durable metadata, like the size of a fallocated file is.
        self.fs.with_file(&self.path, |file, _| {
            for image in [&mut file.current, &mut file.durable] {
                if (image.len() as u64) < len {
                    image.resize(len as usize, 0);
                }
            }
        })
    }

    async fn set_len(&self, len: u64) -> io::Result<()> {
        if self.fs.tick()? {
            return Err(crashed_err());
        }
        self.fs.with_file(&self.path, |file, _| {
            let op = Op::SetLen(len);
            apply(&mut file.current, &op);
            file.unsynced.push(op);
        })
    }

    fn len(&self) -> io::Result<u64> {
        let st = self.fs.0.borrow();
        st.files
            .get(&self.path)
            .map(|f| f.current.len() as u64)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "file removed"))
    }

    fn is_direct(&self) -> bool {
        true
    }
}
