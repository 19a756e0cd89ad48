use super::*;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Cursor};
use std::path::Path;
use std::process::Command;
use time::macros::datetime;

const MODIFIED: time::OffsetDateTime = datetime!(2024-05-17 13:45:31 UTC);

/// Deterministic bytes that look random (like a PKCS#12).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// Runs an outside tool, or returns None (after saying so) when it is not installed.
fn run_tool(program: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(program)
        .args(args)
        .env("PYTHONIOENCODING", "utf-8")
        .output()
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            println!("skipped: {program} is not installed");
            None
        }
        Err(e) => panic!("{program}: {e}"),
    }
}

/// A batch written as the nodes would: each chunk's part to its own file under `dir`.
struct Batch {
    head: Head,
    parts: Vec<PieceObject>,
    /// (part index, entry) in archive order.
    entries: Vec<(usize, PartEntry)>,
    /// Every entry's (name, data) in archive order, manifest last.
    files: Vec<(String, Vec<u8>)>,
    manifest: Vec<u8>,
}

fn write_batch(dir: &Path, chunks: &[Vec<(String, Vec<u8>)>]) -> Batch {
    let chain = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".to_vec();
    let head = Head::new(&[("chain.pem", &chain)], MODIFIED).unwrap();
    let mut files = vec![("chain.pem".to_owned(), chain)];
    let mut parts = Vec::new();
    let mut entries = Vec::new();
    let mut manifest = String::from("row,file_name,sha256\n");
    for (index, chunk) in chunks.iter().enumerate() {
        let key = format!("batches/1/part-{index:04}-1");
        let path = dir.join(format!("part-{index:04}-1"));
        let mut writer = PartWriter::new(BufWriter::new(File::create(&path).unwrap()), MODIFIED);
        for (name, data) in chunk {
            let entry = writer.add(name, data).unwrap();
            assert_eq!(entry.sha256, <[u8; 32]>::from(Sha256::digest(data)));
            assert_eq!(entry.crc32, crc32fast::hash(data));
            writeln!(manifest, "{},{name},{}", files.len(), hex(&entry.sha256)).unwrap();
            entries.push((index, entry));
            files.push((name.clone(), data.clone()));
        }
        let written = writer.len();
        let (_, len) = writer.finish().unwrap();
        assert_eq!(len, written);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
        parts.push(PieceObject { key, len });
    }
    let manifest = manifest.into_bytes();
    files.push(("manifest.csv".to_owned(), manifest.clone()));
    Batch {
        head,
        parts,
        entries,
        files,
        manifest,
    }
}

/// Writes the batch's tail to `dir/tail` and returns the layout.
fn stitch(dir: &Path, batch: &Batch, comment: &[u8]) -> (Stitched, TailSummary) {
    let file = BufWriter::new(File::create(dir.join("tail")).unwrap());
    let mut tail = TailWriter::new(
        file,
        &batch.head,
        &batch.parts,
        "manifest.csv",
        &mut batch.manifest.as_slice(),
        batch.manifest.len() as u64,
        MODIFIED,
    )
    .unwrap();
    for (part, entry) in &batch.entries {
        tail.entry(*part, entry).unwrap();
    }
    let (_, summary) = tail.finish(comment).unwrap();
    assert_eq!(
        std::fs::metadata(dir.join("tail")).unwrap().len(),
        summary.len
    );
    let tail = PieceObject {
        key: "batches/1/tail".to_owned(),
        len: summary.len,
    };
    (
        Stitched::new(&batch.head, batch.parts.clone(), tail),
        summary,
    )
}

/// Reads an object segment from the files under `dir` (the key's last component).
fn read_object(dir: &Path, key: &str, offset: u64, len: u64) -> Vec<u8> {
    let name = key.rsplit('/').next().unwrap();
    let mut file = File::open(dir.join(name)).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    let mut bytes = vec![0; usize::try_from(len).unwrap()];
    file.read_exact(&mut bytes).unwrap();
    bytes
}

/// The bytes of `range` of the archive, reassembled from its segments.
fn read_range(stitched: &Stitched, dir: &Path, range: Range<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for segment in stitched.segments(range).unwrap() {
        match segment {
            Segment::Bytes(bytes) => {
                assert!(!bytes.is_empty());
                out.extend_from_slice(&bytes);
            }
            Segment::Object { key, offset, len } => {
                assert!(len > 0);
                out.extend(read_object(dir, key, offset, len));
            }
        }
    }
    out
}

/// Python's `zipfile`: `testzip()`, then name and SHA-256 of every member, in order.
const PYTHON_CHECK: &str = r#"
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    assert bad is None, bad
    print(z.comment.decode())
    for i in z.infolist():
        print(i.filename, hashlib.sha256(z.read(i)).hexdigest(), sep="\t")
"#;

fn chunks() -> Vec<Vec<(String, Vec<u8>)>> {
    let device = |i: u64| (format!("devices/sensor-{i:04}.p12"), noise(i, 2500));
    vec![
        (0..40).map(device).collect(),
        Vec::new(),
        (40..60)
            .map(device)
            .chain([
                ("devices/capteur-é-ü-日本.p12".to_owned(), noise(99, 2600)),
                ("devices/empty.p12".to_owned(), Vec::new()),
            ])
            .collect(),
    ]
}

#[test]
fn three_parts_stitch_into_a_zip_that_the_zip_crate_python_and_unzip_read() {
    let dir = tempfile::tempdir().unwrap();
    let batch = write_batch(dir.path(), &chunks());
    assert_eq!(batch.parts[1].len, 0);
    let (stitched, summary) = stitch(dir.path(), &batch, b"certmill batch 1");
    assert_eq!(summary.entries, batch.files.len() as u64);
    assert!(!summary.zip64);
    let bytes = read_range(&stitched, dir.path(), 0..stitched.len());
    assert_eq!(bytes.len() as u64, stitched.len());
    let zip_path = dir.path().join("batch.zip");
    std::fs::write(&zip_path, &bytes).unwrap();

    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(archive.comment(), b"certmill batch 1");
    assert_eq!(archive.len(), batch.files.len());
    for (index, (name, data)) in batch.files.iter().enumerate() {
        let mut file = archive.by_index(index).unwrap();
        assert_eq!(file.name().unwrap(), name.as_str());
        assert_eq!(file.compression(), zip::CompressionMethod::Stored);
        assert_eq!(file.crc32(), crc32fast::hash(data));
        let mut read = Vec::new();
        file.read_to_end(&mut read).unwrap();
        assert!(&read == data, "{name}");
    }
    drop(archive);

    // Read front to back through the local headers only, as a streaming reader does.
    let mut reader = bytes.as_slice();
    let mut streamed = Vec::new();
    while let Some(mut file) = zip::read::read_zipfile_from_stream(&mut reader).unwrap() {
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        streamed.push((file.name().unwrap().into_owned(), data));
    }
    assert!(streamed == batch.files);

    let path = zip_path.to_str().unwrap();
    if let Some(output) = run_tool("python3", &["-c", PYTHON_CHECK, path]) {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut expected = vec!["certmill batch 1".to_owned()];
        expected.extend(
            batch
                .files
                .iter()
                .map(|(name, data)| format!("{name}\t{}", hex(&Sha256::digest(data)))),
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    }
    if let Some(output) = run_tool("unzip", &["-t", path]) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("No errors detected"), "{stdout}");
        assert_eq!(
            stdout.matches("  OK").count(),
            batch.files.len(),
            "{stdout}"
        );
    }
}

#[test]
fn any_range_reassembled_from_segments_equals_the_same_bytes_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let batch = write_batch(dir.path(), &chunks());
    let (stitched, _) = stitch(dir.path(), &batch, b"");
    let full = read_range(&stitched, dir.path(), 0..stitched.len());
    let len = stitched.len();
    let head_len = batch.head.bytes().len() as u64;
    let part0_end = head_len + batch.parts[0].len;
    // Boundaries: around the head, the empty part, the tail; then random ranges.
    let mut ranges = vec![
        0..0,
        0..1,
        0..head_len,
        head_len - 1..head_len + 1,
        part0_end - 1..part0_end + 1,
        part0_end..part0_end,
        len - 1..len,
        len..len,
        0..len,
    ];
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for _ in 0..500 {
        let start = next(len + 1);
        let end = start + next(len - start + 1);
        ranges.push(start..end);
    }
    for range in ranges {
        let bytes = read_range(&stitched, dir.path(), range.clone());
        let (start, end) = (
            usize::try_from(range.start).unwrap(),
            usize::try_from(range.end).unwrap(),
        );
        assert!(bytes == full[start..end], "{range:?}");
    }
    // The empty part never shows up as a segment; a range past the end is refused.
    let segments = stitched.segments(0..len).unwrap();
    assert_eq!(segments.len(), 1 + 2 + 1);
    for bad in [0..len + 1, len + 1..len + 2] {
        assert!(matches!(
            stitched.segments(bad),
            Err(ZipPartsError::Range { .. })
        ));
    }
    #[allow(clippy::reversed_empty_ranges)]
    let reversed = 5..4;
    assert!(stitched.segments(reversed).is_err());
}

#[test]
fn zip64_end_records_when_the_entry_count_needs_them() {
    const COUNT: u64 = 70_000;
    let dir = tempfile::tempdir().unwrap();
    let chunk = |range: Range<u64>| -> Vec<(String, Vec<u8>)> {
        range
            .map(|i| (format!("d/{i:05}.p12"), format!("device {i}").into_bytes()))
            .collect()
    };
    let batch = write_batch(
        dir.path(),
        &[chunk(0..30_000), Vec::new(), chunk(30_000..COUNT)],
    );
    let (stitched, summary) = stitch(dir.path(), &batch, b"");
    assert!(summary.zip64);
    assert_eq!(summary.entries, COUNT + 2);
    let bytes = read_range(&stitched, dir.path(), 0..stitched.len());
    let le16 = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let le64 = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let eocd = bytes.len() - 22;
    assert_eq!(le32(eocd), 0x0605_4b50);
    assert_eq!((le16(eocd + 8), le16(eocd + 10)), (0xFFFF, 0xFFFF));
    let locator = eocd - 20;
    assert_eq!(le32(locator), 0x0706_4b50);
    let zip64_end = usize::try_from(le64(locator + 8)).unwrap();
    assert_eq!(le32(zip64_end), 0x0606_4b50);
    assert_eq!(le64(zip64_end + 32), COUNT + 2);

    let mut archive = zip::ZipArchive::new(Cursor::new(bytes.clone())).unwrap();
    assert_eq!(archive.len() as u64, COUNT + 2);
    for (index, name, data) in [
        (1, "d/00000.p12", "device 0"),
        (30_000, "d/29999.p12", "device 29999"),
        (30_001, "d/30000.p12", "device 30000"),
        (70_000, "d/69999.p12", "device 69999"),
    ] {
        let mut file = archive.by_index(index).unwrap();
        assert_eq!(file.name().unwrap(), name);
        let mut read = String::new();
        file.read_to_string(&mut read).unwrap();
        assert_eq!(read, data);
    }
    drop(archive);

    let path = dir.path().join("many.zip");
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    names = z.namelist()
    print(len(names), names[1], z.read(names[1]).decode(), names[-2], z.read(names[-2]).decode(),
          names[-1], sep="\t")
"#;
    if let Some(output) = run_tool("python3", &["-c", script, path]) {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            String::from_utf8(output.stdout).unwrap().trim_end(),
            "70002\td/00000.p12\tdevice 0\td/69999.p12\tdevice 69999\tmanifest.csv"
        );
    }
    if let Some(output) = run_tool("unzip", &["-tq", path]) {
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{stdout}");
        assert!(stdout.contains("No errors detected"), "{stdout}");
    }
}

#[test]
fn tail_writer_refuses_entries_out_of_order_or_outside_their_part() {
    let dir = tempfile::tempdir().unwrap();
    let batch = write_batch(dir.path(), &chunks());
    let new_tail = || {
        TailWriter::new(
            Cursor::new(Vec::new()),
            &batch.head,
            &batch.parts,
            "manifest.csv",
            &mut batch.manifest.as_slice(),
            batch.manifest.len() as u64,
            MODIFIED,
        )
        .unwrap()
    };
    let (first, second) = (&batch.entries[0].1, &batch.entries[1].1);

    let mut tail = new_tail();
    tail.entry(0, second).unwrap();
    assert!(matches!(
        tail.entry(0, first),
        Err(ZipPartsError::EntryOrder { .. })
    ));
    let mut tail = new_tail();
    tail.entry(2, &batch.entries.last().unwrap().1).unwrap();
    assert!(matches!(
        tail.entry(0, first),
        Err(ZipPartsError::EntryOrder { .. })
    ));
    let mut tail = new_tail();
    // Part 1 is empty: nothing fits in it.
    let error = tail.entry(1, first).unwrap_err();
    assert!(matches!(error, ZipPartsError::EntryOutsidePart { .. }));
    assert!(
        error.to_string().contains("devices/sensor-0000.p12"),
        "{error}"
    );
    assert!(matches!(
        tail.entry(3, first),
        Err(ZipPartsError::EntryPart { parts: 3, .. })
    ));

    // A manifest shorter or longer than announced.
    for (announced, longer) in [(batch.manifest.len() as u64 + 1, false), (10, true)] {
        let error = TailWriter::new(
            Cursor::new(Vec::new()),
            &batch.head,
            &batch.parts,
            "manifest.csv",
            &mut batch.manifest.as_slice(),
            announced,
            MODIFIED,
        )
        .err()
        .unwrap();
        assert!(
            matches!(error, ZipPartsError::Length { longer: l, .. } if l == longer),
            "{error}"
        );
    }
}

#[test]
fn part_writer_refuses_bad_names_and_keeps_offsets() {
    let mut writer = PartWriter::new(Vec::new(), MODIFIED);
    let a = writer.add("a.p12", b"aaaa").unwrap();
    assert!(matches!(
        writer.add("../evil.p12", b"x"),
        Err(ZipPartsError::Name { .. })
    ));
    let b = writer.add("b.p12", b"").unwrap();
    assert_eq!((a.offset, a.size), (0, 4));
    assert_eq!(b.offset, 30 + 5 + 4);
    let (bytes, len) = writer.finish().unwrap();
    assert_eq!(len, 2 * (30 + 5) + 4);
    assert_eq!(bytes.len() as u64, len);
    assert_eq!(&bytes[..4], &0x0403_4b50u32.to_le_bytes());
}

/// A worker-hashed entry ([`crate::batch::EntryFile`]) makes the same part and metadata as the
/// bare bytes, whose hashes the writer computes.
#[test]
fn part_writer_takes_worker_hashes_unchanged() {
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut bare = PartWriter::new(Vec::new(), MODIFIED);
    let mut hashed = PartWriter::new(Vec::new(), MODIFIED);
    let expected = bare.add("d.p12", &data).unwrap();
    let entry = hashed
        .add_file_entry("d.p12", &crate::batch::EntryFile::new(data.clone()))
        .unwrap();
    assert_eq!(
        (entry.offset, entry.size, entry.crc32, entry.sha256),
        (
            expected.offset,
            expected.size,
            expected.crc32,
            expected.sha256
        )
    );
    assert_eq!(entry.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
    assert_eq!(hashed.finish().unwrap().0, bare.finish().unwrap().0);
}

#[test]
fn zip64_offsets_past_4_gib_in_a_sparse_archive() {
    const BLOCK: u64 = 64 << 20;
    const HUGE: u64 = 65 * BLOCK;
    let dir = tempfile::tempdir().unwrap();
    let small = |range: Range<u64>| -> Vec<(String, Vec<u8>)> {
        range
            .map(|i| (format!("devices/{i}.p12"), noise(i, 3000)))
            .collect()
    };
    // Parts 0 and 1 by the part writer; part 1 stands in for the 4 GiB chunk until it is
    // replaced below by a sparse part of one 4.06 GiB entry of zeros, built by hand (hashing
    // 4 GiB would cost the test seconds for nothing).
    let mut batch = write_batch(dir.path(), &[small(0..2), Vec::new(), small(2..4)]);
    let zeros = vec![0u8; usize::try_from(BLOCK).unwrap()];
    let block_crc32 = crc32fast::Hasher::new_with_initial_len(crc32fast::hash(&zeros), BLOCK);
    let mut huge_crc32 = crc32fast::Hasher::new();
    for _ in 0..65 {
        huge_crc32.combine(&block_crc32);
    }
    let huge_entry = PartEntry {
        name: "zeros.bin".to_owned(),
        offset: 0,
        size: HUGE,
        crc32: huge_crc32.finalize(),
        sha256: [0; 32],
    };
    let meta = EntryMeta {
        crc32: huge_entry.crc32,
        size: HUGE,
        local_header_offset: 0,
    };
    let (fixed, extra) = local_header(&meta, 9, DosDateTime::new(MODIFIED));
    let mut huge_header = fixed.as_bytes().to_vec();
    huge_header.extend_from_slice(b"zeros.bin");
    huge_header.extend_from_slice(extra.as_bytes());
    let huge_part = dir.path().join("part-0001-1");
    let mut file = File::create(&huge_part).unwrap();
    file.write_all(&huge_header).unwrap();
    file.set_len(huge_header.len() as u64 + HUGE).unwrap();
    drop(file);
    batch.parts[1].len = huge_header.len() as u64 + HUGE;
    batch.entries.insert(2, (1, huge_entry.clone()));
    let (stitched, summary) = stitch(dir.path(), &batch, b"");
    assert!(summary.zip64);
    assert!(stitched.len() > 4 << 30);

    // The archive as a sparse file: every piece but the zeros copied.
    let path = dir.path().join("large.zip");
    let mut out = File::create(&path).unwrap();
    for segment in stitched.segments(0..stitched.len()).unwrap() {
        match segment {
            Segment::Bytes(bytes) => out.write_all(&bytes).unwrap(),
            Segment::Object { key, .. } if key.ends_with("part-0001-1") => {
                out.write_all(&huge_header).unwrap();
                out.seek(SeekFrom::Current(i64::try_from(HUGE).unwrap()))
                    .unwrap();
            }
            Segment::Object { key, offset, len } => {
                out.write_all(&read_object(dir.path(), key, offset, len))
                    .unwrap();
            }
        }
    }
    assert_eq!(out.stream_position().unwrap(), stitched.len());
    drop(out);
    // Ranges across the 4 GiB mark and the pieces' edges, reassembled from the segments.
    let mut archive_file = File::open(&path).unwrap();
    let huge_start = batch.head.bytes().len() as u64 + batch.parts[0].len;
    for range in [
        huge_start - 5..huge_start + 100,
        (4 << 30) - 10..(4 << 30) + 10,
        huge_start + batch.parts[1].len - 3..stitched.len(),
    ] {
        let mut expected = vec![0; usize::try_from(range.end - range.start).unwrap()];
        archive_file.seek(SeekFrom::Start(range.start)).unwrap();
        archive_file.read_exact(&mut expected).unwrap();
        assert!(
            read_range(&stitched, dir.path(), range.clone()) == expected,
            "{range:?}"
        );
    }

    let mut archive = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
    assert_eq!(archive.len(), 7);
    {
        let entry = archive.by_name("zeros.bin").unwrap();
        assert_eq!(entry.header_start(), huge_start);
        assert_eq!((entry.size(), entry.crc32()), (HUGE, huge_entry.crc32));
    }
    for (name, data) in batch.files.iter().filter(|(name, _)| name != "chain.pem") {
        let mut entry = archive.by_name(name).unwrap();
        let mut read = Vec::new();
        entry.read_to_end(&mut read).unwrap();
        assert!(&read == data, "{name}");
    }
    for name in ["devices/2.p12", "devices/3.p12", "manifest.csv"] {
        assert!(archive.by_name(name).unwrap().header_start() > 4 << 30);
    }
    drop(archive);

    let path = path.to_str().unwrap();
    let script = r#"
import hashlib, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for i in z.infolist():
        data = b"" if i.filename == "zeros.bin" else z.read(i)
        print(i.filename, i.file_size, i.header_offset > 4 << 30,
              hashlib.sha256(data).hexdigest(), sep="\t")
"#;
    if let Some(output) = run_tool("python3", &["-c", script, path]) {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 7, "{stdout}");
        assert!(
            lines[3].starts_with(&format!("zeros.bin\t{HUGE}\tFalse")),
            "{stdout}"
        );
        for (name, data) in &batch.files {
            let past = ["devices/2.p12", "devices/3.p12", "manifest.csv"].contains(&name.as_str());
            let line = format!(
                "{name}\t{}\t{}\t{}",
                data.len(),
                if past { "True" } else { "False" },
                hex(&Sha256::digest(data))
            );
            assert!(lines.contains(&line.as_str()), "{line}\n{stdout}");
        }
    }
    if let Some(output) = run_tool("unzip", &["-p", path, "devices/3.p12", "manifest.csv"]) {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut expected = batch.files[batch.files.len() - 2].1.clone();
        expected.extend_from_slice(&batch.manifest);
        assert!(output.stdout == expected);
    }
}
