//! The text that image tools embed next to the pixels: A1111's `parameters`.
//!
//! Where A1111 puts it (and so where we read it):
//! - PNG: a `tEXt`, `zTXt` or `iTXt` chunk with keyword `parameters`;
//! - JPEG and WebP: the EXIF `UserComment` tag, an 8-byte character-code prefix then the text
//!   (`UNICODE\0` + UTF-16, big-endian as piexif writes it unless a byte-order mark says otherwise;
//!   `ASCII\0\0\0` or undefined zeros + bytes read as UTF-8).
//!
//! The writers beside the reader make the fixture server's images and the tests' round trips.
//!
//! Test: `cargo test -p negopt-etl image_text`.

use std::io::Cursor;

use exif::{Field, In, Tag, Value};

/// The PNG text keyword A1111 uses.
pub const PARAMETERS_KEYWORD: &str = "parameters";

/// Why no parameters text came out of an image.
#[derive(Debug, thiserror::Error)]
pub enum ImageTextError {
    /// The bytes start like no PNG, JPEG or WebP file.
    #[error("not a PNG, JPEG or WebP image (starts with {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// The PNG decoder rejected the file.
    #[error("broken PNG: {0}")]
    Png(#[from] png::DecodingError),
    /// The EXIF block could not be read.
    #[error("broken EXIF: {0}")]
    Exif(#[from] exif::Error),
    /// The image carries no `parameters` text.
    #[error("{format} image has no A1111 parameters text")]
    NoParameters {
        /// `PNG`, `JPEG` or `WebP`.
        format: &'static str,
    },
}

/// The PNG text chunk kinds a writer can choose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PngChunk {
    /// `tEXt`: Latin-1 text (A1111's default).
    Text,
    /// `iTXt`: UTF-8 text (A1111 when the text is not Latin-1).
    IText,
}

/// Reads the A1111 `parameters` text from PNG, JPEG or WebP bytes.
pub fn read_parameters(bytes: &[u8]) -> Result<String, ImageTextError> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        read_png(bytes)
    } else if bytes.starts_with(&[0xff, 0xd8]) {
        read_exif(bytes, "JPEG")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        read_exif(bytes, "WebP")
    } else {
        Err(ImageTextError::UnknownFormat(
            bytes.iter().take(8).copied().collect(),
        ))
    }
}

fn read_png(bytes: &[u8]) -> Result<String, ImageTextError> {
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info()?;
    if let Some(text) = png_text(reader.info()) {
        return Ok(text);
    }
    // Text chunks may also follow the image data: decode it, then read to the end.
    let mut pixels = vec![0; reader.output_buffer_size().unwrap_or(0)];
    reader.next_frame(&mut pixels)?;
    reader.finish()?;
    png_text(reader.info()).ok_or(ImageTextError::NoParameters { format: "PNG" })
}

fn png_text(info: &png::Info) -> Option<String> {
    let latin1 = info
        .uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == PARAMETERS_KEYWORD)
        .map(|c| c.text.clone());
    let compressed = || {
        info.compressed_latin1_text
            .iter()
            .find(|c| c.keyword == PARAMETERS_KEYWORD)
            .and_then(|c| c.get_text().ok())
    };
    let utf8 = || {
        info.utf8_text
            .iter()
            .find(|c| c.keyword == PARAMETERS_KEYWORD)
            .and_then(|c| c.get_text().ok())
    };
    latin1.or_else(compressed).or_else(utf8)
}

fn read_exif(bytes: &[u8], format: &'static str) -> Result<String, ImageTextError> {
    let exif = exif::Reader::new().read_from_container(&mut Cursor::new(bytes))?;
    let field = exif
        .get_field(Tag::UserComment, In::PRIMARY)
        .ok_or(ImageTextError::NoParameters { format })?;
    match &field.value {
        Value::Undefined(raw, _) => Ok(decode_user_comment(raw)),
        _ => Err(ImageTextError::NoParameters { format }),
    }
}

/// Decodes an EXIF UserComment: 8-byte character code, then the text.
fn decode_user_comment(raw: &[u8]) -> String {
    let (code, body) = raw.split_at(raw.len().min(8));
    let text = if code == b"UNICODE\0" {
        let (big_endian, body) = match body {
            [0xff, 0xfe, rest @ ..] => (false, rest),
            [0xfe, 0xff, rest @ ..] => (true, rest),
            _ => (true, body),
        };
        let units: Vec<u16> = body
            .chunks_exact(2)
            .map(|b| {
                if big_endian {
                    u16::from_be_bytes([b[0], b[1]])
                } else {
                    u16::from_le_bytes([b[0], b[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(body).into_owned()
    };
    text.trim_end_matches('\0').to_string()
}

/// An 8×8 PNG of one colour carrying `text` under the `parameters` keyword.
pub fn png_with_text(text: &str, chunk: PngChunk, rgb: [u8; 3]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 8, 8);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let added = match chunk {
            PngChunk::Text => encoder.add_text_chunk(PARAMETERS_KEYWORD.into(), text.into()),
            PngChunk::IText => encoder.add_itxt_chunk(PARAMETERS_KEYWORD.into(), text.into()),
        };
        added.expect("a text chunk with a valid keyword is accepted");
        let mut writer = encoder
            .write_header()
            .expect("an in-memory PNG header writes");
        let pixels: Vec<u8> = rgb.iter().copied().cycle().take(8 * 8 * 3).collect();
        writer
            .write_image_data(&pixels)
            .expect("an in-memory PNG body writes");
    }
    out
}

/// A TIFF block (as EXIF stores it) with `text` as a UNICODE UserComment, the way A1111 writes
/// JPEG and WebP (through piexif: UTF-16 big-endian).
fn exif_block(text: &str) -> Vec<u8> {
    let mut comment = b"UNICODE\0".to_vec();
    comment.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    let field = Field {
        tag: Tag::UserComment,
        ifd_num: In::PRIMARY,
        value: Value::Undefined(comment, 0),
    };
    let mut writer = exif::experimental::Writer::new();
    writer.push_field(&field);
    let mut tiff = Cursor::new(Vec::new());
    writer
        .write(&mut tiff, false)
        .expect("an in-memory EXIF block writes");
    tiff.into_inner()
}

/// A minimal JPEG (SOI, APP1 `Exif`, EOI; no scan data) carrying `text` as UserComment.
pub fn jpeg_with_user_comment(text: &str) -> Vec<u8> {
    let tiff = exif_block(text);
    let len = u16::try_from(tiff.len() + 8).expect("parameters text fits one APP1 segment");
    let mut out = vec![0xff, 0xd8, 0xff, 0xe1];
    out.extend(len.to_be_bytes());
    out.extend(b"Exif\0\0");
    out.extend(tiff);
    out.extend([0xff, 0xd9]);
    out
}

/// A minimal WebP container (RIFF, `EXIF` chunk only) carrying `text` as UserComment.
pub fn webp_with_user_comment(text: &str) -> Vec<u8> {
    let mut tiff = exif_block(text);
    let chunk_len = u32::try_from(tiff.len()).expect("EXIF chunk under 4 GiB");
    if tiff.len() % 2 == 1 {
        tiff.push(0); // RIFF chunks are padded to an even size
    }
    let riff_len = u32::try_from(4 + 8 + tiff.len()).expect("WebP under 4 GiB");
    let mut out = b"RIFF".to_vec();
    out.extend(riff_len.to_le_bytes());
    out.extend(b"WEBPEXIF");
    out.extend(chunk_len.to_le_bytes());
    out.extend(tiff);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXTS: [&str; 3] = [
        "a red circle\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7",
        "猫, été 🦊\nNegative prompt: 模糊\nmore\nSteps: 20, Sampler: Euler a, CFG scale: 7",
        "x",
    ];

    #[test]
    fn image_text_png_text_round_trip() {
        // tEXt is Latin-1: only the first and last texts fit it.
        for text in [TEXTS[0], TEXTS[2]] {
            let png = png_with_text(text, PngChunk::Text, [200, 10, 10]);
            assert_eq!(read_parameters(&png).unwrap(), text);
        }
    }

    #[test]
    fn image_text_png_itxt_round_trip() {
        for text in TEXTS {
            let png = png_with_text(text, PngChunk::IText, [0, 0, 0]);
            assert_eq!(read_parameters(&png).unwrap(), text);
            let parsed = crate::sources::a1111::parse(&read_parameters(&png).unwrap());
            assert_eq!(parsed, crate::sources::a1111::parse(text));
        }
    }

    #[test]
    fn image_text_jpeg_and_webp_round_trip() {
        for text in TEXTS {
            assert_eq!(
                read_parameters(&jpeg_with_user_comment(text)).unwrap(),
                text
            );
            assert_eq!(
                read_parameters(&webp_with_user_comment(text)).unwrap(),
                text
            );
        }
    }

    #[test]
    fn image_text_user_comment_encodings() {
        let mut le = b"UNICODE\0\xff\xfe".to_vec();
        le.extend("hé".encode_utf16().flat_map(u16::to_le_bytes));
        assert_eq!(decode_user_comment(&le), "hé");
        assert_eq!(decode_user_comment(b"ASCII\0\0\0hello\0"), "hello");
        assert_eq!(decode_user_comment(b"\0\0\0\0\0\0\0\0caf\xc3\xa9"), "café");
    }

    #[test]
    fn image_text_errors_name_the_problem() {
        let err = read_parameters(b"GIF89a....").unwrap_err();
        assert!(err.to_string().contains("not a PNG, JPEG or WebP"), "{err}");
        let mut plain = Vec::new();
        {
            let mut e = png::Encoder::new(&mut plain, 1, 1);
            e.set_color(png::ColorType::Grayscale);
            e.write_header().unwrap().write_image_data(&[0]).unwrap();
        }
        let err = read_parameters(&plain).unwrap_err();
        assert!(
            matches!(err, ImageTextError::NoParameters { format: "PNG" }),
            "{err}"
        );
        let err = read_parameters(&png_with_text("x", PngChunk::Text, [0; 3])[..40]).unwrap_err();
        assert!(matches!(err, ImageTextError::Png(_)), "{err}");
    }
}
