//! Writing an archive (SPEC.md §12): many producers, one appender.
//!
//! Each producer thread owns a [`StreamWriter`] and compresses, hashes and seals its own
//! frames, so CPU work scales with producers. Sealed frames go through a bounded crossbeam
//! channel to one appender thread that writes them in arrival order and records where each
//! landed. Memory is bounded by the channel: `in_flight_frames` sealed frames plus one
//! frame being built per producer. [`ArchiveWriter::finish`] writes manifest, index and
//! trailer; for files it then fsyncs, renames `NAME.partial` to `NAME` and fsyncs the
//! directory, so a crash never leaves a half-written file under the final name.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::crypto::{self, ArchiveKeys, KdfParams, KeySlot, KeySource, SUITE_CHACHA20_BLAKE3};
use crate::error::{Error, Result};
use crate::frame::{FRAME_HEADER_LEN, FrameType, META_STREAM};
use crate::header::{FORMAT_MINOR, FileHeader};
use crate::index::{IndexEntry, encode_index};
use crate::manifest::{Manifest, SalvagedStream, StreamSummary, hex};
use crate::payload::{FrameSealer, SealedFrame};
use crate::stream::{StreamDescriptor, StreamEnd, StreamTally};
use crate::trailer::Trailer;

/// How an archive is written.
#[derive(Debug)]
pub struct WriterOptions {
    /// zstd level for every frame (1 is fastest; 3 is zstd's default).
    pub zstd_level: i32,
    /// Encrypt with this key; `None` writes a plain archive.
    pub encryption: Option<KeySource>,
    /// Argon2id costs for a passphrase key slot.
    pub kdf: KdfParams,
    /// Sealed frames that may wait for the appender: the memory bound.
    pub in_flight_frames: usize,
    /// Recorded in the header and manifest.
    pub writer_name: String,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            zstd_level: 1,
            encryption: None,
            kdf: KdfParams::default(),
            in_flight_frames: 8,
            writer_name: concat!("coffer ", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// What a finished archive holds.
#[derive(Clone, Debug)]
pub struct WriteSummary {
    /// The archive's id.
    pub archive_id: [u8; 16],
    /// Bytes written, trailer included.
    pub bytes: u64,
    /// Stream frames written (the index's record count).
    pub frames: u64,
    /// The manifest as written.
    pub manifest: Manifest,
}

struct Shared {
    archive_id: [u8; 16],
    keys: Option<ArchiveKeys>,
    zstd_level: i32,
}

enum Msg {
    Begin(SealedFrame, StreamDescriptor),
    Data(SealedFrame),
    End(SealedFrame, StreamEnd),
    Finish,
}

/// Writes one archive; hands out [`StreamWriter`]s to producers.
pub struct ArchiveWriter {
    shared: Arc<Shared>,
    tx: Sender<Msg>,
    next_stream: AtomicU32,
    appender: Option<JoinHandle<Result<Appender>>>,
    partial: Option<(PathBuf, PathBuf)>,
    created_unix_ms: u64,
    writer_name: String,
}

impl ArchiveWriter {
    /// Writes to `path` through `path.partial` (mode 0600), published by `finish`.
    pub fn create(path: &Path, options: WriterOptions) -> Result<Self> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .map_err(|e| Error::io_output(format!("creating {}", partial.display()), e))?;
        let sink = Sink::File(FileSink::new(file, partial.clone())?);
        let mut w = Self::start(sink, options)?;
        w.partial = Some((partial, path.to_path_buf()));
        Ok(w)
    }

    /// Writes to any byte sink (a pipe, stdout). The trailer is the seal; there is nothing
    /// to rename.
    pub fn to_writer(out: Box<dyn Write + Send>, options: WriterOptions) -> Result<Self> {
        Self::start(
            Sink::Stream(BufWriter::with_capacity(1 << 20, out)),
            options,
        )
    }

    fn start(mut sink: Sink, options: WriterOptions) -> Result<Self> {
        let archive_id = crypto::random_bytes::<16>()?;
        let created_unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let (keys, key_slots, suite) = match &options.encryption {
            Some(source) => {
                let file_key = zeroize::Zeroizing::new(crypto::random_bytes::<32>()?);
                let slot = KeySlot::wrap(source, options.kdf, &archive_id, &file_key)?;
                (
                    Some(ArchiveKeys::new(file_key, archive_id)),
                    vec![slot],
                    SUITE_CHACHA20_BLAKE3,
                )
            }
            None => (None, vec![], 0),
        };
        let header = FileHeader {
            minor: FORMAT_MINOR,
            archive_id,
            created_unix_ms,
            suite,
            optional_features: 0,
            writer: options.writer_name.clone(),
            key_slots,
        };
        let header_bytes = header.encode();
        sink.write(&header_bytes)?;
        let (tx, rx) = crossbeam_channel::bounded(options.in_flight_frames.max(1));
        let appender = Appender {
            sink,
            offset: header_bytes.len() as u64,
            entries: Vec::new(),
            streams: BTreeMap::new(),
        };
        let handle = std::thread::Builder::new()
            .name("coffer-appender".into())
            .spawn(move || appender.run(rx))
            .map_err(|e| Error::io_output("starting the archive appender thread", e))?;
        Ok(ArchiveWriter {
            shared: Arc::new(Shared {
                archive_id,
                keys,
                zstd_level: options.zstd_level,
            }),
            tx,
            next_stream: AtomicU32::new(0),
            appender: Some(handle),
            partial: None,
            created_unix_ms,
            writer_name: options.writer_name,
        })
    }

    /// The archive's id.
    pub fn archive_id(&self) -> [u8; 16] {
        self.shared.archive_id
    }

    /// Opens a new stream; its STREAM_BEGIN frame is queued at once. The returned writer
    /// can move to another thread.
    pub fn stream(&self, descriptor: StreamDescriptor) -> Result<StreamWriter> {
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        if id == META_STREAM {
            return Err(Error::Usage("too many streams".into()));
        }
        let mut sealer = FrameSealer::new(
            id,
            self.shared.archive_id,
            self.shared.zstd_level,
            self.shared.keys.as_ref(),
        )?;
        let json = serde_json::to_vec(&descriptor).expect("descriptor serialises");
        let begin = sealer.seal(FrameType::StreamBegin, 0, 0, false, &json)?;
        let mut w = StreamWriter {
            id,
            tx: self.tx.clone(),
            sealer,
            tally: StreamTally::new(),
        };
        w.tally.accept(&begin.header).map_err(Error::Usage)?;
        w.send(Msg::Begin(begin, descriptor))?;
        Ok(w)
    }

    /// Seals the archive: waits for queued frames, writes manifest, index and trailer, and
    /// publishes the file. `app` is stored as the manifest's `app` member. Fails if any
    /// stream is still open.
    pub fn finish(self, app: serde_json::Value) -> Result<WriteSummary> {
        self.finish_with(app, None)
    }

    /// Gives up on the archive: stops the appender, removes `NAME.partial`, and returns
    /// the I/O error that stopped the appender, if one did (a full disk, say), so the
    /// caller can report the cause instead of "the writer stopped".
    pub fn abandon(mut self) -> Option<Error> {
        let _ = self.tx.send(Msg::Finish);
        let handle = self.appender.take()?;
        match handle.join() {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(Error::Usage("the appender thread panicked".into())),
        }
        // Drop removes the partial file
    }

    pub(crate) fn finish_with(
        mut self,
        app: serde_json::Value,
        salvage: Option<Vec<SalvagedStream>>,
    ) -> Result<WriteSummary> {
        let _ = self.tx.send(Msg::Finish);
        let handle = self.appender.take().expect("finish runs once");
        let mut appender = handle
            .join()
            .map_err(|_| Error::Usage("the appender thread panicked".into()))??;
        let summary = self.seal(&mut appender, app, salvage)?;
        appender.sink.flush_and_sync()?;
        if let Some((partial, path)) = self.partial.take() {
            publish(&partial, &path)?;
        }
        Ok(summary)
    }

    fn seal(
        &self,
        a: &mut Appender,
        app: serde_json::Value,
        salvage: Option<Vec<SalvagedStream>>,
    ) -> Result<WriteSummary> {
        let mut streams = Vec::with_capacity(a.streams.len());
        for (&id, s) in &a.streams {
            let Some(end) = s.end else {
                return Err(Error::Usage(format!(
                    "stream {id} ({}) was never finished",
                    s.descriptor.name
                )));
            };
            streams.push(StreamSummary {
                id,
                descriptor: s.descriptor.clone(),
                data_frames: end.data_frames,
                raw_len: end.raw_len,
                stored_len: s.stored_len,
                digest: hex(&end.digest),
            });
        }
        let manifest = Manifest {
            format_version: format!("1.{FORMAT_MINOR}"),
            writer: self.writer_name.clone(),
            created_unix_ms: self.created_unix_ms,
            streams,
            salvage,
            app,
        };
        let mut sealer = FrameSealer::new(
            META_STREAM,
            self.shared.archive_id,
            self.shared.zstd_level,
            self.shared.keys.as_ref(),
        )?;
        let m = sealer.seal(FrameType::Manifest, 0, 0, false, &manifest.to_json())?;
        let manifest_offset = a.append(&m)?;
        let frame_count = a.entries.len() as u64;
        let index = encode_index(&mut a.entries);
        let i = sealer.seal(FrameType::Index, 1, 0, true, &index)?;
        let index_offset = a.append(&i)?;
        let trailer = Trailer {
            index_offset,
            index_stored_len: i.header.stored_len,
            manifest_offset,
            manifest_stored_len: m.header.stored_len,
            frame_count,
            archive_id: self.shared.archive_id,
        };
        a.sink.write(&trailer.encode(self.shared.keys.as_ref()))?;
        a.offset += crate::trailer::TRAILER_LEN as u64;
        Ok(WriteSummary {
            archive_id: self.shared.archive_id,
            bytes: a.offset,
            frames: frame_count,
            manifest,
        })
    }
}

impl Drop for ArchiveWriter {
    /// An archive that was not finished is abandoned: its `.partial` file is removed, so
    /// nothing half-written is left behind. (On a pipe the missing trailer says the same.)
    fn drop(&mut self) {
        if let Some((partial, _)) = &self.partial {
            let _ = std::fs::remove_file(partial);
        }
    }
}

fn publish(partial: &Path, path: &Path) -> Result<()> {
    std::fs::rename(partial, path).map_err(|e| {
        Error::io_output(
            format!("renaming {} to {}", partial.display(), path.display()),
            e,
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io_output(format!("syncing directory {}", dir.display()), e))
}

/// Writes the frames of one stream. Frames go out in order; each `write_frame` call is
/// one DATA frame, so the caller decides where frames are cut (for PostgreSQL, on row
/// boundaries, so that any frame can be loaded by itself).
pub struct StreamWriter {
    id: u32,
    tx: Sender<Msg>,
    sealer: FrameSealer,
    tally: StreamTally,
}

impl StreamWriter {
    /// The stream's id in this archive.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Seals `raw` as the stream's next DATA frame and queues it; blocks while the channel
    /// is full. `raw` must be 1 byte to `limits::MAX_FRAME_RAW`.
    pub fn write_frame(&mut self, raw: &[u8]) -> Result<()> {
        if raw.is_empty() || raw.len() > crate::limits::MAX_FRAME_RAW as usize {
            return Err(Error::Usage(format!(
                "a data frame must hold 1 to {} bytes, not {}",
                crate::limits::MAX_FRAME_RAW,
                raw.len()
            )));
        }
        let seq = self.tally.frames_seen();
        let offset = self.tally.summary().raw_len;
        let frame = self.sealer.seal(FrameType::Data, seq, offset, false, raw)?;
        self.tally.accept(&frame.header).map_err(Error::Usage)?;
        self.send(Msg::Data(frame))
    }

    /// Ends the stream with its STREAM_END frame; returns the summary it carries.
    pub fn finish(mut self) -> Result<StreamEnd> {
        let end = self.tally.summary();
        let seq = self.tally.frames_seen();
        let frame =
            self.sealer
                .seal(FrameType::StreamEnd, seq, end.raw_len, true, &end.encode())?;
        self.tally.accept(&frame.header).map_err(Error::Usage)?;
        self.send(Msg::End(frame, end))?;
        Ok(end)
    }

    fn send(&self, msg: Msg) -> Result<()> {
        self.tx.send(msg).map_err(|_| Error::WriterClosed)
    }
}

enum Sink {
    File(FileSink),
    Stream(BufWriter<Box<dyn Write + Send>>),
}

/// Bytes written between background syncs of an archive file.
const SYNC_EVERY: u64 = 8 << 20;

/// An archive file being written. Every [`SYNC_EVERY`] bytes a syncer thread flushes what
/// has been written to disk while the appender goes on, so that sealing the archive waits
/// only for the last few MiB instead of the whole file (measured: the single final fsync
/// cost 5–15 % of write throughput at zstd level 1).
struct FileSink {
    out: BufWriter<File>,
    path: PathBuf,
    unsynced: u64,
    syncer: Option<(
        std::sync::mpsc::SyncSender<()>,
        JoinHandle<std::io::Result<()>>,
    )>,
}

impl FileSink {
    fn new(file: File, path: PathBuf) -> Result<Self> {
        let clone = file
            .try_clone()
            .map_err(|e| Error::io_output(format!("opening {} for syncing", path.display()), e))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
        let handle = std::thread::Builder::new()
            .name("coffer-syncer".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    clone.sync_data()?;
                }
                Ok(())
            })
            .map_err(|e| Error::io_output("starting the archive syncer thread", e))?;
        Ok(FileSink {
            out: BufWriter::with_capacity(1 << 20, file),
            path,
            unsynced: 0,
            syncer: Some((tx, handle)),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.out.flush()?;
            self.unsynced = 0;
            if let Some((tx, _)) = &self.syncer {
                // a sync already under way will cover most of these bytes: never wait
                let _ = tx.try_send(());
            }
        }
        Ok(())
    }

    fn flush_and_sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        if let Some((tx, handle)) = self.syncer.take() {
            drop(tx);
            handle
                .join()
                .map_err(|_| std::io::Error::other("the archive syncer thread panicked"))??;
        }
        self.out.get_ref().sync_all()
    }
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            Sink::File(f) => f
                .write(bytes)
                .map_err(|e| Error::io_output(format!("writing {}", f.path.display()), e)),
            Sink::Stream(w) => w
                .write_all(bytes)
                .map_err(|e| Error::io_output("writing the archive", e)),
        }
    }

    fn flush_and_sync(&mut self) -> Result<()> {
        match self {
            Sink::File(f) => f
                .flush_and_sync()
                .map_err(|e| Error::io_output(format!("flushing {}", f.path.display()), e)),
            Sink::Stream(w) => w
                .flush()
                .map_err(|e| Error::io_output("flushing the archive", e)),
        }
    }
}

struct StreamRecord {
    descriptor: StreamDescriptor,
    stored_len: u64,
    end: Option<StreamEnd>,
}

/// The appender thread's state: the sink, the file offset, and what the index and
/// manifest will need.
struct Appender {
    sink: Sink,
    offset: u64,
    entries: Vec<IndexEntry>,
    streams: BTreeMap<u32, StreamRecord>,
}

impl Appender {
    fn run(mut self, rx: Receiver<Msg>) -> Result<Self> {
        // Leaving the loop drops `rx`: producers then get `WriterClosed` instead of blocking.
        while let Ok(msg) = rx.recv() {
            let frame = match msg {
                Msg::Finish => break,
                Msg::Begin(frame, descriptor) => {
                    self.streams.insert(
                        frame.header.stream_id,
                        StreamRecord {
                            descriptor,
                            stored_len: 0,
                            end: None,
                        },
                    );
                    frame
                }
                Msg::Data(frame) => frame,
                Msg::End(frame, end) => {
                    if let Some(s) = self.streams.get_mut(&frame.header.stream_id) {
                        s.end = Some(end);
                    }
                    frame
                }
            };
            let at = self.append(&frame)?;
            self.entries.push(IndexEntry::for_frame(&frame.header, at));
            if let Some(s) = self.streams.get_mut(&frame.header.stream_id) {
                s.stored_len += frame.header.frame_len();
            }
        }
        Ok(self)
    }

    fn append(&mut self, frame: &SealedFrame) -> Result<u64> {
        let at = self.offset;
        self.sink.write(&frame.header.encode())?;
        self.sink.write(&frame.payload)?;
        self.offset += (FRAME_HEADER_LEN + frame.payload.len()) as u64;
        Ok(at)
    }
}
