//! What the dynamic loader reads from one ELF file (class, machine, interpreter, DT_NEEDED,
//! DT_SONAME, DT_RPATH, DT_RUNPATH), read with positioned reads so a large library is never
//! read whole, and parsed with goblin.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::dynamic::{DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, Dynamic};
use goblin::elf::header::{EI_CLASS, EI_DATA, ELFCLASS64, ELFDATA2LSB, header64};
use goblin::elf::program_header::{PT_DYNAMIC, PT_INTERP, ProgramHeader};
use goblin::elf::{Elf, Header};

/// The four bytes every ELF file starts with.
pub(super) const MAGIC: &[u8; 4] = b"\x7fELF";

/// The longest interpreter path or dynamic string read; the kernel's PATH_MAX.
const MAX_STRING_BYTES: u64 = 4096;
/// The largest PT_DYNAMIC segment read: far above any real one, which holds tens of entries.
const MAX_DYNAMIC_BYTES: u64 = 1 << 20;

/// What decides whether and how an object is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Object {
    pub(super) kind: Kind,
    /// PT_INTERP: the loader the kernel starts for an executable.
    pub(super) interpreter: Option<PathBuf>,
    pub(super) needed: Vec<OsString>,
    pub(super) soname: Option<OsString>,
    /// DT_RPATH and DT_RUNPATH strings as written: colon-separated lists of directories.
    pub(super) rpath: Vec<OsString>,
    pub(super) runpath: Vec<OsString>,
}

/// What a library must share with the object that needs it, as ld.so checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Kind {
    pub(super) is_64: bool,
    pub(super) little_endian: bool,
    pub(super) machine: u16,
}

#[derive(Debug)]
pub(super) enum ReadError {
    NotElf,
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<goblin::error::Error> for ReadError {
    fn from(e: goblin::error::Error) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// Reads the header, the program headers, PT_INTERP and the dynamic section of `file`.
pub(super) fn read_object(file: &File) -> Result<Object, ReadError> {
    let mut start = [0; header64::SIZEOF_EHDR];
    let len = read_up_to(file, 0, &mut start)?;
    let start = &start[..len];
    if !start.starts_with(MAGIC) {
        return Err(ReadError::NotElf);
    }
    let header = Elf::parse_header(start)?;
    let little_endian = header.e_ident[EI_DATA] == ELFDATA2LSB;
    let is_64 = header.e_ident[EI_CLASS] == ELFCLASS64;
    let container = if is_64 {
        Container::Big
    } else {
        Container::Little
    };
    let ctx = Ctx::new(container, Endian::from(little_endian));
    let program_headers = read_program_headers(file, &header, ctx)?;
    let mut object = Object {
        kind: Kind {
            is_64,
            little_endian,
            machine: header.e_machine,
        },
        interpreter: None,
        needed: Vec::new(),
        soname: None,
        rpath: Vec::new(),
        runpath: Vec::new(),
    };
    if let Some(interp) = program_headers.iter().find(|ph| ph.p_type == PT_INTERP) {
        let path = read_string(file, interp.p_offset, interp.p_filesz.min(MAX_STRING_BYTES))?;
        if path.is_empty() {
            return Err(ReadError::Malformed("PT_INTERP is empty".to_owned()));
        }
        object.interpreter = Some(PathBuf::from(path));
    }
    read_dynamic(file, &program_headers, ctx, &mut object)?;
    Ok(object)
}

fn read_program_headers(
    file: &File,
    header: &Header,
    ctx: Ctx,
) -> Result<Vec<ProgramHeader>, ReadError> {
    let count = usize::from(header.e_phnum);
    let size = ProgramHeader::size(ctx);
    if count > 0 && usize::from(header.e_phentsize) != size {
        return Err(ReadError::Malformed(format!(
            "program header entries are {} bytes, not {size}",
            header.e_phentsize
        )));
    }
    let bytes = read_exact(
        file,
        header.e_phoff,
        (count * size) as u64,
        "program headers",
    )?;
    Ok(ProgramHeader::parse(&bytes, 0, count, ctx)?)
}

/// Fills in DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH from the first PT_DYNAMIC segment.
fn read_dynamic(
    file: &File,
    program_headers: &[ProgramHeader],
    ctx: Ctx,
    object: &mut Object,
) -> Result<(), ReadError> {
    let Some(segment) = program_headers.iter().find(|ph| ph.p_type == PT_DYNAMIC) else {
        return Ok(());
    };
    if segment.p_filesz > MAX_DYNAMIC_BYTES {
        return Err(ReadError::Malformed(format!(
            "PT_DYNAMIC is {} bytes",
            segment.p_filesz
        )));
    }
    let bytes = read_exact(file, segment.p_offset, segment.p_filesz, "PT_DYNAMIC")?;
    // `Dynamic::parse` reads the segment at its file offset within the bytes it is given, so it
    // gets the segment alone, rebased to offset 0. The PT_LOAD headers stay as they are: through
    // them it turns DT_STRTAB's address into a file offset.
    let rebased: Vec<ProgramHeader> = program_headers
        .iter()
        .map(|ph| match ph.p_type {
            PT_DYNAMIC => ProgramHeader {
                p_offset: 0,
                ..ph.clone()
            },
            _ => ph.clone(),
        })
        .collect();
    let Some(dynamic) = Dynamic::parse(&bytes, &rebased, ctx)? else {
        return Ok(());
    };
    let strtab = dynamic.info.strtab as u64;
    let strsz = dynamic.info.strsz as u64;
    for entry in &dynamic.dyns {
        if !matches!(entry.d_tag, DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH) {
            continue;
        }
        if strtab == 0 {
            return Err(ReadError::Malformed(
                "DT_STRTAB is missing or outside every loaded segment".to_owned(),
            ));
        }
        if entry.d_val >= strsz {
            return Err(ReadError::Malformed(format!(
                "a dynamic string at {} is past DT_STRSZ ({strsz})",
                entry.d_val
            )));
        }
        let max = (strsz - entry.d_val).min(MAX_STRING_BYTES);
        let text = read_string(file, strtab.saturating_add(entry.d_val), max)?;
        match entry.d_tag {
            DT_NEEDED => object.needed.push(text),
            DT_SONAME => object.soname = Some(text),
            DT_RPATH => object.rpath.push(text),
            _ => object.runpath.push(text),
        }
    }
    Ok(())
}

/// The NUL-terminated string at `offset`, which must end within `max` bytes.
fn read_string(file: &File, offset: u64, max: u64) -> Result<OsString, ReadError> {
    let mut buf = vec![0; max as usize];
    let len = read_up_to(file, offset, &mut buf)?;
    buf.truncate(len);
    match buf.iter().position(|&b| b == 0) {
        Some(end) => {
            buf.truncate(end);
            Ok(OsString::from_vec(buf))
        }
        None => Err(ReadError::Malformed(format!(
            "the string at offset {offset} has no end within {max} bytes"
        ))),
    }
}

fn read_exact(file: &File, offset: u64, len: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let mut buf = vec![0; len as usize];
    if read_up_to(file, offset, &mut buf)? < buf.len() {
        return Err(ReadError::Malformed(format!(
            "{what} end past the end of the file"
        )));
    }
    Ok(buf)
}

/// Reads into `buf` from `offset` until it is full or the file ends; returns the bytes read.
/// Offsets no file can reach read as the end of the file.
pub(super) fn read_up_to(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let at = offset.saturating_add(filled as u64);
        if at > i64::MAX as u64 {
            break;
        }
        match file.read_at(&mut buf[filled..], at) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
