//! PDF documents typeset in-process with typst: a main markup file and
//! the data files it reads (`json("data.json")`), with fonts found among
//! the system's. Chinese text needs a CJK font; none is embedded (the
//! ones that come with typst have no CJK glyphs), so the first of
//! [`CJK_FONTS`] that exists is used, or the file `WATCHPOST_PDF_FONT`
//! names. Nothing is read from the network: typst packages are not
//! available, charts are drawn with typst's own shapes.

use std::path::{Path, PathBuf};

use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

/// Where Debian and its derivatives put CJK fonts: `fonts-noto-cjk`
/// (the static `.ttc`, not the variable one, which renders as empty
/// boxes), `fonts-wqy-microhei`, `fonts-wqy-zenhei`.
pub const CJK_FONTS: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
];

/// The environment variable naming a font file to use instead.
pub const FONT_ENV: &str = "WATCHPOST_PDF_FONT";

/// Fonts loaded once, shared by every document.
pub struct Fonts {
    fonts: Vec<Font>,
    book: LazyHash<FontBook>,
    /// Family names, the CJK one first: what the markup's `set text(font:)` takes.
    pub families: Vec<String>,
    /// The files they came from.
    pub files: Vec<PathBuf>,
}

impl Fonts {
    /// Finds a CJK font: `WATCHPOST_PDF_FONT` if set, else the first of
    /// [`CJK_FONTS`] (with its bold sibling, when there is one). The error
    /// says what was looked for and which package provides it.
    pub fn find() -> Result<Fonts, String> {
        let candidates: Vec<PathBuf> = match std::env::var_os(FONT_ENV) {
            Some(p) => vec![PathBuf::from(p)],
            None => CJK_FONTS.iter().map(PathBuf::from).collect(),
        };
        Fonts::find_in(&candidates)
    }

    /// The first of `candidates` that exists (with its bold sibling).
    pub fn find_in(candidates: &[PathBuf]) -> Result<Fonts, String> {
        let Some(regular) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "no CJK font for PDF reports: looked for {}; install fonts-noto-cjk or fonts-wqy-microhei, or set {FONT_ENV} to a .ttf/.ttc/.otf file (HTML, CSV and XLSX reports do not need it)",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let mut files = vec![regular.clone()];
        let bold = PathBuf::from(regular.to_string_lossy().replace("-Regular.", "-Bold."));
        if bold != *regular && bold.is_file() {
            files.push(bold);
        }
        Fonts::load(&files)
    }

    /// Loads every face of `files`.
    pub fn load(files: &[PathBuf]) -> Result<Fonts, String> {
        let mut fonts = Vec::new();
        for f in files {
            let data = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let before = fonts.len();
            fonts.extend(Font::iter(Bytes::new(data)));
            if fonts.len() == before {
                return Err(format!("{}: not a font file typst can read", f.display()));
            }
        }
        let mut families: Vec<String> = Vec::new();
        // Simplified Chinese first where a collection holds several.
        let mut names: Vec<String> = fonts.iter().map(|f| f.info().family.clone()).collect();
        names.sort_by_key(|n| (!n.ends_with(" SC"), n.clone()));
        for n in names {
            if !families.contains(&n) {
                families.push(n);
            }
        }
        Ok(Fonts {
            book: LazyHash::new(FontBook::from_fonts(&fonts)),
            fonts,
            families,
            files: files.to_vec(),
        })
    }
}

struct Doc<'a> {
    library: LazyHash<Library>,
    fonts: &'a Fonts,
    main: FileId,
    source: Source,
    files: Vec<(FileId, Bytes)>,
    today: Option<(i32, u8, u8)>,
}

fn id_of(name: &str) -> Result<FileId, String> {
    let path = VirtualPath::new(format!("/{name}")).map_err(|e| format!("{name}: {e:?}"))?;
    Ok(RootedPath::new(VirtualRoot::Project, path).intern())
}

impl World for Doc<'_> {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.fonts.book
    }

    fn main(&self) -> FileId {
        self.main
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main {
            Ok(self.source.clone())
        } else {
            Err(FileError::NotSource)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        self.files
            .iter()
            .find(|(f, _)| *f == id)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| FileError::NotFound(Path::new("/").to_path_buf()))
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.fonts.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        let (y, m, d) = self.today?;
        Datetime::from_ymd(y, m, d)
    }
}

/// Typesets `markup` (which may read `files` by name) into a PDF. The
/// error lists typst's messages.
pub fn typeset(
    markup: &str,
    files: &[(&str, Vec<u8>)],
    fonts: &Fonts,
    today: Option<(i32, u8, u8)>,
) -> Result<Vec<u8>, String> {
    let main = id_of("main.typ")?;
    let doc = Doc {
        library: LazyHash::new(Library::default()),
        fonts,
        main,
        source: Source::new(main, markup.to_string()),
        files: files
            .iter()
            .map(|(n, b)| Ok((id_of(n)?, Bytes::new(b.clone()))))
            .collect::<Result<_, String>>()?,
        today,
    };
    let messages = |d: &[typst::diag::SourceDiagnostic]| {
        d.iter()
            .map(|d| d.message.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let document: PagedDocument = typst::compile(&doc)
        .output
        .map_err(|e| format!("typesetting the PDF: {}", messages(&e)))?;
    typst_pdf::pdf(&document, &typst_pdf::PdfOptions::default())
        .map_err(|e| format!("writing the PDF: {}", messages(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_cjk_font_is_a_clear_error_naming_the_packages() {
        let Err(e) = Fonts::find_in(&[PathBuf::from("/nonexistent/NotoSansCJK-Regular.ttc")]) else {
            panic!("found a font that is not there")
        };
        assert!(e.contains("no CJK font for PDF reports"), "{e}");
        assert!(e.contains("/nonexistent/NotoSansCJK-Regular.ttc"), "{e}");
        assert!(e.contains("fonts-noto-cjk or fonts-wqy-microhei"), "{e}");
        assert!(e.contains("HTML, CSV and XLSX reports do not need it"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_font_is_named() {
        let dir = std::env::temp_dir().join(format!("watchpost-pdf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("not-a-font.ttc");
        std::fs::write(&f, b"hello").expect("write");
        let Err(e) = Fonts::find_in(std::slice::from_ref(&f)) else {
            panic!("read a font from text")
        };
        assert!(e.contains("not a font file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
