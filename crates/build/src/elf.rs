//! The files ELF programs need at run time (interpreter and shared libraries), found inside a
//! root filesystem the way the dynamic loader (`ld.so`) finds them, so an image can carry
//! exactly those.

mod conf;
mod object;
mod root;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use goblin::elf::header::{EM_386, EM_AARCH64, EM_X86_64};

use crate::detect::APP_DIR;

use self::object::{Kind, MAGIC, Object, ReadError, read_object, read_up_to};
use self::root::{Resolved, Root};

/// Why a closure could not be computed; paths are inside the root unless said otherwise.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("{} must be an absolute path inside the root", path.display())]
    NotAbsolute { path: PathBuf },
    #[error("{} does not exist in the root {}", path.display(), root.display())]
    NotFound { path: PathBuf, root: PathBuf },
    #[error("{} is not an ELF file", path.display())]
    NotElf { path: PathBuf },
    #[error("{} is not a valid ELF file: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "interpreter {} of {} does not exist in the root {}",
        interpreter.display(), object.display(), root.display()
    )]
    MissingInterpreter {
        interpreter: PathBuf,
        object: PathBuf,
        root: PathBuf,
    },
    #[error(
        "library {library} needed by {} is not in the root {} (searched {})",
        needed_by.display(), root.display(), list(searched)
    )]
    MissingLibrary {
        library: String,
        needed_by: PathBuf,
        root: PathBuf,
        searched: Vec<PathBuf>,
    },
    #[error(
        "too many levels of symbolic links resolving {} in the root {} (a loop?)",
        path.display(), root.display()
    )]
    TooManyLinks { path: PathBuf, root: PathBuf },
    /// `path` is a host path.
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn list(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "nothing".to_owned();
    }
    let shown: Vec<_> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Whether `path` is a regular file (a symlink is not followed) starting with the ELF magic.
pub fn is_elf(path: &Path) -> bool {
    if !fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file()) {
        return false;
    }
    let mut magic = [0; 4];
    File::open(path)
        .and_then(|file| read_up_to(&file, 0, &mut magic))
        .is_ok_and(|len| len == magic.len() && &magic == MAGIC)
}

/// Every file that `objects` need at run time inside `root`, a host directory standing for `/`:
/// the objects themselves, the interpreter an executable names (PT_INTERP) and, recursively,
/// each DT_NEEDED library, found as ld.so finds it. The search goes through the DT_RPATH of the
/// object and of the objects that loaded it (unless the object has a DT_RUNPATH), then its
/// DT_RUNPATH, with `$ORIGIN` the directory of the object naming it; then the directories that
/// `/etc/ld.so.conf` and `/etc/ld.so.conf.d/*.conf` list; then the multiarch directories of the
/// object's machine, `/lib` and `/usr/lib`. A library of another class or machine than the
/// object needing it is passed over, as ld.so does.
///
/// `objects` are absolute in-root paths of executables or shared objects (such as Python
/// extension modules); each is loaded as if in a process of its own, where a library already
/// loaded under a name or soname is not searched for again.
///
/// The result holds absolute in-root paths: each file, and each symlink followed to reach it
/// (`/lib64`, `/usr/lib64/ld-linux-x86-64.so.2` and `/lib` on Debian 12, whose `/usr` is
/// merged). No path has a symlink among its parents, so copying them all into an image, links
/// as links, makes every file reachable by the names the loader uses. Symlinks are resolved
/// inside the root: absolute targets start at the root and `..` stops there, so nothing outside
/// it is read. Other tokens than `$ORIGIN` (`$LIB`, `$PLATFORM`) and relative search
/// directories are not supported: such entries are skipped.
pub fn closure(root: &Path, objects: &[PathBuf]) -> Result<BTreeSet<PathBuf>, ElfError> {
    closure_in(Root::new(root), objects)
}

/// [`closure`] in `root` with the host directory `app` standing at [`APP_DIR`] (`/app`), as it
/// will in the image: for an app's own programs and native extensions, whose links and
/// `$ORIGIN` paths lead both within the app and into the root. Paths under `/app` in the result
/// are in-image paths of files in `app`.
pub fn closure_with_app(
    root: &Path,
    app: &Path,
    objects: &[PathBuf],
) -> Result<BTreeSet<PathBuf>, ElfError> {
    closure_in(Root::new(root).with_mount(Path::new(APP_DIR), app), objects)
}

fn closure_in(root: Root<'_>, objects: &[PathBuf]) -> Result<BTreeSet<PathBuf>, ElfError> {
    let mut closure = Closure {
        root,
        conf_dirs: conf::conf_dirs(root)?,
        objects: HashMap::new(),
        paths: BTreeSet::new(),
    };
    for object in objects {
        closure.program(object)?;
    }
    Ok(closure.paths)
}

struct Closure<'a> {
    root: Root<'a>,
    conf_dirs: Vec<PathBuf>,
    /// Objects read so far, by real in-root path.
    objects: HashMap<PathBuf, Rc<Object>>,
    paths: BTreeSet<PathBuf>,
}

/// An object in the process being followed.
struct Loaded {
    /// Its real in-root path.
    path: PathBuf,
    /// What `$ORIGIN` stands for in its search paths.
    origin: PathBuf,
    /// The object whose DT_NEEDED brought it in; `None` for the program.
    loader: Option<usize>,
    object: Rc<Object>,
}

impl Closure<'_> {
    /// Adds `input` and everything it loads, as one process.
    fn program(&mut self, input: &Path) -> Result<(), ElfError> {
        if !input.is_absolute() {
            return Err(ElfError::NotAbsolute {
                path: input.to_owned(),
            });
        }
        let found = self
            .root
            .resolve(input)?
            .ok_or_else(|| ElfError::NotFound {
                path: input.to_owned(),
                root: self.root.dir().to_owned(),
            })?;
        if !found.meta.is_file() {
            return Err(ElfError::NotElf {
                path: input.to_owned(),
            });
        }
        let object = self.read(&found.path, input)?;
        self.add(&found);
        // A program's `$ORIGIN` is its real directory, as the kernel reports it in /proc/self/exe.
        let origin = found.path.parent().unwrap_or(Path::new("/")).to_owned();
        // The names and sonames of the objects loaded so far, which DT_NEEDED entries match
        // before any search.
        let mut names: HashSet<OsString> = object.soname.iter().cloned().collect();
        if let Some(interpreter) = &object.interpreter {
            let interp = self.interpreter(interpreter, &found.path)?;
            // libc names the loader in its DT_NEEDED; ld.so finds itself by soname.
            names.extend(interp.soname.clone());
        }
        let mut loaded = vec![Loaded {
            path: found.path,
            origin,
            loader: None,
            object,
        }];
        let mut next = 0;
        while next < loaded.len() {
            let object = Rc::clone(&loaded[next].object);
            for name in &object.needed {
                if names.contains(name) {
                    continue;
                }
                let (found, library, origin) = self.find(name, &loaded, next)?;
                names.insert(name.clone());
                names.extend(library.soname.clone());
                // Even a file already loaded under another name is reached by this one's path.
                self.add(&found);
                if loaded.iter().all(|l| l.path != found.path) {
                    loaded.push(Loaded {
                        path: found.path,
                        origin,
                        loader: Some(next),
                        object: library,
                    });
                }
            }
            next += 1;
        }
        Ok(())
    }

    fn interpreter(&mut self, interpreter: &Path, program: &Path) -> Result<Rc<Object>, ElfError> {
        let missing = || ElfError::MissingInterpreter {
            interpreter: interpreter.to_owned(),
            object: program.to_owned(),
            root: self.root.dir().to_owned(),
        };
        let found = self
            .root
            .resolve(interpreter)?
            .filter(|found| found.meta.is_file())
            .ok_or_else(missing)?;
        let object = self.read(&found.path, interpreter)?;
        self.add(&found);
        Ok(object)
    }

    /// Finds the library `name` that `loaded[index]` needs: the resolved file, its contents
    /// and the `$ORIGIN` of its own search paths.
    fn find(
        &mut self,
        name: &OsStr,
        loaded: &[Loaded],
        index: usize,
    ) -> Result<(Resolved, Rc<Object>, PathBuf), ElfError> {
        let needer = &loaded[index];
        // A name with a slash is a path, not searched for. ld.so takes a relative one from its
        // working directory; here that is the root.
        let dirs = if name.as_bytes().contains(&b'/') {
            let path = Path::new("/").join(name);
            vec![path.parent().unwrap_or(Path::new("/")).to_owned()]
        } else {
            search_dirs(loaded, index, &self.conf_dirs)
        };
        let file_name = Path::new(name).file_name().unwrap_or(name);
        for dir in &dirs {
            let candidate = dir.join(file_name);
            let Some(found) = self.root.resolve(&candidate)? else {
                continue;
            };
            if !found.meta.is_file() {
                continue;
            }
            let library = self.read(&found.path, &candidate)?;
            if library.kind == needer.object.kind {
                return Ok((found, library, dir.clone()));
            }
        }
        Err(ElfError::MissingLibrary {
            library: name.to_string_lossy().into_owned(),
            needed_by: needer.path.clone(),
            root: self.root.dir().to_owned(),
            searched: dirs,
        })
    }

    /// Reads the object at the real in-root path `path`, once; errors name `shown`.
    fn read(&mut self, path: &Path, shown: &Path) -> Result<Rc<Object>, ElfError> {
        if let Some(object) = self.objects.get(path) {
            return Ok(Rc::clone(object));
        }
        let host = self.root.host_path(path);
        let object = File::open(&host)
            .map_err(ReadError::Io)
            .and_then(|file| read_object(&file))
            .map_err(|e| match e {
                ReadError::NotElf => ElfError::NotElf {
                    path: shown.to_owned(),
                },
                ReadError::Malformed(reason) => ElfError::Malformed {
                    path: shown.to_owned(),
                    reason,
                },
                ReadError::Io(source) => ElfError::Io { path: host, source },
            })?;
        let object = Rc::new(object);
        self.objects.insert(path.to_owned(), Rc::clone(&object));
        Ok(object)
    }

    fn add(&mut self, found: &Resolved) {
        self.paths.extend(found.links.iter().cloned());
        self.paths.insert(found.path.clone());
    }
}

/// Where ld.so looks for the libraries `loaded[index]` needs, in order, each once.
fn search_dirs(loaded: &[Loaded], index: usize, conf_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let needer = &loaded[index];
    let mut dirs = Vec::new();
    if needer.object.runpath.is_empty() {
        // DT_RPATH of the object, then of each object that loaded it, up to the program;
        // an object with a DT_RUNPATH has its DT_RPATH ignored.
        let mut at = Some(index);
        while let Some(i) = at {
            let l = &loaded[i];
            if l.object.runpath.is_empty() {
                dirs.extend(expand(&l.object.rpath, &l.origin));
            }
            at = l.loader;
        }
    }
    dirs.extend(expand(&needer.object.runpath, &needer.origin));
    dirs.extend(conf_dirs.iter().cloned());
    dirs.extend(system_dirs(needer.object.kind));
    let mut seen = HashSet::new();
    dirs.retain(|dir| seen.insert(dir.clone()));
    dirs
}

/// The directories of DT_RPATH or DT_RUNPATH strings, with `$ORIGIN` replaced by `origin`.
fn expand(lists: &[OsString], origin: &Path) -> Vec<PathBuf> {
    lists
        .iter()
        .flat_map(|list| list.as_bytes().split(|&b| b == b':'))
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| expand_origin(entry, origin.as_os_str().as_bytes()))
        .collect()
}

/// `entry` with `$ORIGIN` and `${ORIGIN}` replaced; `None` if another `$` token remains or the
/// result is relative.
fn expand_origin(entry: &[u8], origin: &[u8]) -> Option<PathBuf> {
    let mut out = Vec::with_capacity(entry.len());
    let mut rest = entry;
    while let Some(dollar) = rest.iter().position(|&b| b == b'$') {
        out.extend_from_slice(&rest[..dollar]);
        rest = &rest[dollar..];
        if let Some(after) = rest.strip_prefix(b"${ORIGIN}") {
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"$ORIGIN")
            && !after
                .first()
                .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
        {
            rest = after;
        } else {
            return None;
        }
        out.extend_from_slice(origin);
    }
    out.extend_from_slice(rest);
    let path = PathBuf::from(OsString::from_vec(out));
    path.is_absolute().then_some(path)
}

/// The loader's built-in directories for objects of `kind`, multiarch ones first as on Debian.
fn system_dirs(kind: Kind) -> Vec<PathBuf> {
    let triple = match (kind.machine, kind.is_64) {
        (EM_X86_64, true) => Some("x86_64-linux-gnu"),
        (EM_AARCH64, true) => Some("aarch64-linux-gnu"),
        (EM_386, false) => Some("i386-linux-gnu"),
        _ => None,
    };
    let mut dirs = Vec::new();
    if let Some(triple) = triple {
        dirs.push(Path::new("/lib").join(triple));
        dirs.push(Path::new("/usr/lib").join(triple));
    }
    dirs.push(PathBuf::from("/lib"));
    dirs.push(PathBuf::from("/usr/lib"));
    dirs
}
