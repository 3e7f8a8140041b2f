//! Validates uploaded report photos and strips everything but the pixels from them.
//!
//! A whistleblower's phone writes its GPS position, make, model, serial number and the time
//! into every photo. Sent on unchanged, one photo can identify the person the service promises
//! to protect. So an upload is never stored as received: [`clean`] walks the JPEG segments or
//! PNG chunks, copies only what a viewer needs to draw the image, and drops the rest.
//!
//! We walk the container by hand instead of decoding and re-encoding with the `image` crate:
//! re-encoding loses quality (photos are evidence), costs CPU and a large dependency, and would
//! make the stored bytes differ from any copy the reporter keeps. Both formats are simple:
//! length-prefixed segments (JPEG, ITU T.81 Annex B) and length/type/data/CRC chunks (PNG,
//! ISO/IEC 15948). Everything is allow-listed: a segment or chunk we do not know is dropped
//! (or, if the format says a decoder must understand it, the file is rejected).
//!
//! The file type comes from magic bytes only, never from the file name or declared MIME type.

use sha2::{Digest, Sha256};

/// Largest accepted upload, before cleaning.
pub const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
/// Most photos one report may carry.
pub const MAX_PHOTOS: usize = 9;

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];

/// Image format, detected from the first bytes of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoKind {
    Jpeg,
    Png,
}

impl PhotoKind {
    /// The stored and sent form (`report_photos.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
        }
    }

    /// The file name extension in the attachment store.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// Detects the format from magic bytes; `None` for anything else.
    pub fn detect(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(&PNG_SIGNATURE) {
            Some(Self::Png)
        } else {
            None
        }
    }

    /// MIME type to serve the cleaned bytes with.
    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// A photo with all metadata removed, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanPhoto {
    pub kind: PhotoKind,
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes` (the cleaned file), for deduplication and the audit trail.
    pub sha256: [u8; 32],
    pub width: u32,
    pub height: u32,
}

/// Why an upload was refused. `message_zh` is what the reporter sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("photo larger than {MAX_PHOTO_BYTES} bytes")]
    TooLarge,
    #[error("not a JPEG or PNG file")]
    NotAnImage,
    /// The detail is for logs only; it never contains file contents.
    #[error("malformed image: {0}")]
    Malformed(&'static str),
}

impl PhotoError {
    /// Message for the reporter, in Simplified Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            Self::TooLarge => "照片不能超过10MB",
            Self::NotAnImage => "只能上传JPG或PNG格式的照片",
            Self::Malformed(_) => "照片文件已损坏，请重新拍摄或选择",
        }
    }
}

/// Checks that `bytes` is a well-formed JPEG or PNG and returns a copy without metadata.
pub fn clean(bytes: &[u8]) -> Result<CleanPhoto, PhotoError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::TooLarge);
    }
    let kind = PhotoKind::detect(bytes).ok_or(PhotoError::NotAnImage)?;
    let (cleaned, width, height) = match kind {
        PhotoKind::Jpeg => clean_jpeg(bytes)?,
        PhotoKind::Png => clean_png(bytes)?,
    };
    let sha256 = Sha256::digest(&cleaned).into();
    Ok(CleanPhoto {
        kind,
        bytes: cleaned,
        sha256,
        width,
        height,
    })
}

// ---------------------------------------------------------------------------------------------
// JPEG

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP14: u8 = 0xEE;

/// What to do with a marker segment that precedes or sits between scans.
enum JpegSegment {
    /// Tables and frame header the decoder needs: copied verbatim.
    Keep,
    /// Metadata (APPn, COM): left out.
    Drop,
}

fn classify_jpeg_marker(marker: u8) -> Result<JpegSegment, PhotoError> {
    match marker {
        // DQT, DHT, DAC (arithmetic tables), DRI, DNL: decoding tables and parameters.
        0xDB | 0xC4 | 0xCC | 0xDD | 0xDC => Ok(JpegSegment::Keep),
        // Non-hierarchical frame headers (baseline, extended, progressive, lossless, and their
        // arithmetic-coded variants). Hierarchical frames (SOF5-7, 13-15) need DHP/EXP and no
        // camera or phone writes them, so they fall through to "unsupported" below.
        0xC0..=0xC3 | 0xC9..=0xCB => Ok(JpegSegment::Keep),
        // APP0..APP15 and COM. APP0 and APP14 are handled by the caller before this point.
        0xE0..=0xEF | 0xFE => Ok(JpegSegment::Drop),
        SOI => Err(PhotoError::Malformed("jpeg: second SOI")),
        EOI => Err(PhotoError::Malformed("jpeg: EOI before any scan")),
        0xD0..=0xD7 | 0x01 => Err(PhotoError::Malformed("jpeg: stray standalone marker")),
        _ => Err(PhotoError::Malformed("jpeg: unsupported marker")),
    }
}

/// Copies a JPEG keeping only what decoding needs.
///
/// Kept: DQT, DHT, DAC, DRI, DNL, the frame header (SOFn), each SOS header with its
/// entropy-coded data, and EOI; plus two APP segments that change how pixels decode:
/// - APP0 "JFIF", rebuilt to its fixed 16-byte form: it may carry a thumbnail, and a thumbnail
///   can show what the reporter cropped out of the main image;
/// - APP14 "Adobe", cut to its fixed 12 bytes: its transform flag says whether the components
///   are YCbCr or RGB/CMYK, so without it some files decode with wrong colours.
///
/// Dropped: APP1 (Exif with GPS, make/model, serial numbers, timestamps, an embedded
/// thumbnail; XMP with the same and editing history), APP2 (ICC profiles, whose description
/// and device tags can name the phone model; MPF multi-picture indexes), APP3..APP13, APP15
/// (maker notes, Photoshop IRB with its own thumbnail and captions) and COM. Losing the ICC
/// profile shifts colours slightly on wide-gamut phone photos; for evidence that staff look at
/// this is an acceptable price for not leaking the device.
///
/// Anything after EOI is dropped: phones append motion-photo videos and second images there,
/// and it is the classic place to hide data.
fn clean_jpeg(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), PhotoError> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&[0xFF, SOI]);
    let mut pos = 2;
    let mut dimensions: Option<(u32, u32)> = None;
    let mut seen_scan = false;

    loop {
        let marker = next_marker(bytes, &mut pos)?;
        if marker == EOI {
            if !seen_scan {
                return Err(PhotoError::Malformed("jpeg: no scan"));
            }
            out.extend_from_slice(&[0xFF, EOI]);
            break;
        }
        let segment = segment_body(bytes, pos)?;
        let whole = &bytes[pos - 2..pos + 2 + segment.len()];
        pos += 2 + segment.len();

        match marker {
            SOS => {
                if dimensions.is_none() {
                    return Err(PhotoError::Malformed("jpeg: scan before frame header"));
                }
                seen_scan = true;
                out.extend_from_slice(whole);
                let end = entropy_coded_end(bytes, pos)?;
                out.extend_from_slice(&bytes[pos..end]);
                pos = end;
            }
            APP0 if segment.starts_with(b"JFIF\0") && segment.len() >= 14 => {
                // identifier(5) version(2) units(1) Xdensity(2) Ydensity(2), then a zero-sized
                // thumbnail in place of whatever the file had.
                out.extend_from_slice(&[0xFF, APP0, 0x00, 16]);
                out.extend_from_slice(&segment[..12]);
                out.extend_from_slice(&[0, 0]);
            }
            APP14 if segment.starts_with(b"Adobe") && segment.len() >= 12 => {
                // identifier(5) version(2) flags0(2) flags1(2) transform(1)
                out.extend_from_slice(&[0xFF, APP14, 0x00, 14]);
                out.extend_from_slice(&segment[..12]);
            }
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                classify_jpeg_marker(marker)?;
                if dimensions.is_some() {
                    return Err(PhotoError::Malformed("jpeg: second frame header"));
                }
                dimensions = Some(frame_dimensions(segment)?);
                out.extend_from_slice(whole);
            }
            _ => match classify_jpeg_marker(marker)? {
                JpegSegment::Keep => out.extend_from_slice(whole),
                JpegSegment::Drop => {}
            },
        }
    }

    let (width, height) = dimensions.ok_or(PhotoError::Malformed("jpeg: no frame header"))?;
    Ok((out, width, height))
}

/// Reads the marker at `pos` (skipping 0xFF fill bytes) and leaves `pos` just after it.
fn next_marker(bytes: &[u8], pos: &mut usize) -> Result<u8, PhotoError> {
    if bytes.get(*pos) != Some(&0xFF) {
        return Err(PhotoError::Malformed("jpeg: expected a marker"));
    }
    while bytes.get(*pos) == Some(&0xFF) {
        *pos += 1;
    }
    let marker = *bytes
        .get(*pos)
        .ok_or(PhotoError::Malformed("jpeg: truncated at marker"))?;
    *pos += 1;
    Ok(marker)
}

/// The body of the length-prefixed segment whose length field starts at `pos`.
fn segment_body(bytes: &[u8], pos: usize) -> Result<&[u8], PhotoError> {
    let length = match bytes.get(pos..pos + 2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err(PhotoError::Malformed("jpeg: truncated segment length")),
    };
    if length < 2 {
        return Err(PhotoError::Malformed("jpeg: segment length below 2"));
    }
    bytes
        .get(pos + 2..pos + length)
        .ok_or(PhotoError::Malformed("jpeg: segment runs past end of file"))
}

/// Width and height from a SOFn body: precision(1) height(2) width(2) components(1) ...
fn frame_dimensions(sof: &[u8]) -> Result<(u32, u32), PhotoError> {
    let &[_, h1, h2, w1, w2, components, ..] = sof else {
        return Err(PhotoError::Malformed("jpeg: short frame header"));
    };
    let height = u32::from(u16::from_be_bytes([h1, h2]));
    let width = u32::from(u16::from_be_bytes([w1, w2]));
    if sof.len() != 6 + 3 * usize::from(components) || components == 0 {
        return Err(PhotoError::Malformed("jpeg: frame header length"));
    }
    // Height 0 means "defined later by DNL"; no phone writes that and we would not know
    // the size, so refuse it together with the invalid width 0.
    if width == 0 || height == 0 {
        return Err(PhotoError::Malformed("jpeg: zero dimension"));
    }
    Ok((width, height))
}

/// Position of the first marker after entropy-coded data starting at `pos`.
///
/// Inside a scan, 0xFF is followed by 0x00 (a stuffed data byte) or RST0-7 (restart markers,
/// part of the scan); any other byte after 0xFF starts the next marker. Fill 0xFF bytes before
/// a marker are left for `next_marker` to skip.
fn entropy_coded_end(bytes: &[u8], mut pos: usize) -> Result<usize, PhotoError> {
    loop {
        let offset = bytes
            .get(pos..)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))
            .ok_or(PhotoError::Malformed("jpeg: scan runs past end of file"))?;
        pos += offset;
        match bytes.get(pos + 1) {
            None => return Err(PhotoError::Malformed("jpeg: scan runs past end of file")),
            Some(0x00 | 0xD0..=0xD7) => pos += 2,
            Some(_) => return Ok(pos),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PNG

/// Chunks a PNG keeps besides the critical IHDR, PLTE, IDAT and IEND.
///
/// tRNS (transparency), gAMA, cHRM and sRGB are fixed-layout numbers that change how pixels
/// look and cannot carry text. iCCP is dropped: it holds a free-text profile name and a
/// compressed profile whose description can name the device (same trade-off as JPEG APP2).
/// Everything else ancillary goes: eXIf, tEXt, zTXt, iTXt and tIME obviously, but also pHYs,
/// bKGD, sPLT, APNG's acTL/fcTL/fdAT (the static default image stays) and private chunks.
const PNG_KEPT_ANCILLARY: [&[u8; 4]; 4] = [b"tRNS", b"gAMA", b"cHRM", b"sRGB"];

/// Copies a PNG keeping only the chunks listed in [`PNG_KEPT_ANCILLARY`] and the critical ones,
/// verifying every chunk's CRC and the chunk order the format requires.
fn clean_png(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), PhotoError> {
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&PNG_SIGNATURE);
    let mut pos = PNG_SIGNATURE.len();
    let mut dimensions: Option<(u32, u32)> = None;
    let mut palette_required = false;
    let mut seen_palette = false;
    // 0: no IDAT yet, 1: inside the IDAT run, 2: after it.
    let mut idat_state = 0u8;

    loop {
        let chunk = read_png_chunk(bytes, pos)?;
        pos += chunk.whole.len();
        let kind = chunk.kind;

        if dimensions.is_none() && kind != b"IHDR" {
            return Err(PhotoError::Malformed("png: first chunk is not IHDR"));
        }
        if idat_state == 1 && kind != b"IDAT" {
            idat_state = 2;
        }
        match kind {
            b"IHDR" => {
                if dimensions.is_some() {
                    return Err(PhotoError::Malformed("png: second IHDR"));
                }
                let (width, height, colour_type) = parse_ihdr(chunk.data)?;
                dimensions = Some((width, height));
                palette_required = colour_type == 3;
            }
            b"PLTE" => {
                if seen_palette || idat_state != 0 {
                    return Err(PhotoError::Malformed("png: misplaced PLTE"));
                }
                seen_palette = true;
            }
            b"IDAT" => match idat_state {
                0 if palette_required && !seen_palette => {
                    return Err(PhotoError::Malformed("png: palette image without PLTE"));
                }
                0 | 1 => idat_state = 1,
                _ => return Err(PhotoError::Malformed("png: IDAT chunks not consecutive")),
            },
            b"IEND" => {
                if idat_state == 0 {
                    return Err(PhotoError::Malformed("png: no IDAT"));
                }
                if !chunk.data.is_empty() {
                    return Err(PhotoError::Malformed("png: IEND with data"));
                }
                out.extend_from_slice(chunk.whole);
                break;
            }
            _ if kind[0].is_ascii_uppercase() => {
                // Bit 5 of the first byte clear = critical: a decoder must understand it.
                return Err(PhotoError::Malformed("png: unknown critical chunk"));
            }
            _ => {
                if PNG_KEPT_ANCILLARY.contains(&kind) {
                    out.extend_from_slice(chunk.whole);
                }
                continue;
            }
        }
        out.extend_from_slice(chunk.whole);
    }

    let (width, height) = dimensions.ok_or(PhotoError::Malformed("png: no IHDR"))?;
    Ok((out, width, height))
}

struct PngChunk<'a> {
    kind: &'a [u8; 4],
    data: &'a [u8],
    /// Length, type, data and CRC: the bytes to copy.
    whole: &'a [u8],
}

fn read_png_chunk(bytes: &[u8], pos: usize) -> Result<PngChunk<'_>, PhotoError> {
    let header = bytes
        .get(pos..pos + 8)
        .ok_or(PhotoError::Malformed("png: truncated chunk header"))?;
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if length > 0x7FFF_FFFF {
        return Err(PhotoError::Malformed("png: chunk length out of range"));
    }
    let kind: &[u8; 4] = bytes[pos + 4..pos + 8]
        .try_into()
        .expect("slice of 4 bytes converts to [u8; 4]");
    if !kind.iter().all(u8::is_ascii_alphabetic) {
        return Err(PhotoError::Malformed("png: invalid chunk type"));
    }
    let data_len = usize::try_from(length).expect("length below 2^31 fits in usize");
    let end = pos + 8 + data_len + 4;
    let whole = bytes
        .get(pos..end)
        .ok_or(PhotoError::Malformed("png: chunk runs past end of file"))?;
    let data = &whole[8..8 + data_len];
    let stored_crc = u32::from_be_bytes([
        whole[8 + data_len],
        whole[9 + data_len],
        whole[10 + data_len],
        whole[11 + data_len],
    ]);
    if crc32(&whole[4..8 + data_len]) != stored_crc {
        return Err(PhotoError::Malformed("png: chunk CRC mismatch"));
    }
    Ok(PngChunk { kind, data, whole })
}

/// Width, height and colour type from IHDR, after checking the header is one PNG allows.
fn parse_ihdr(data: &[u8]) -> Result<(u32, u32, u8), PhotoError> {
    let &[
        w0,
        w1,
        w2,
        w3,
        h0,
        h1,
        h2,
        h3,
        depth,
        colour,
        compression,
        filter,
        interlace,
    ] = data
    else {
        return Err(PhotoError::Malformed("png: IHDR length"));
    };
    let width = u32::from_be_bytes([w0, w1, w2, w3]);
    let height = u32::from_be_bytes([h0, h1, h2, h3]);
    if width == 0 || height == 0 || width > 0x7FFF_FFFF || height > 0x7FFF_FFFF {
        return Err(PhotoError::Malformed("png: dimension out of range"));
    }
    let depth_allowed = match colour {
        0 => matches!(depth, 1 | 2 | 4 | 8 | 16),
        3 => matches!(depth, 1 | 2 | 4 | 8),
        2 | 4 | 6 => matches!(depth, 8 | 16),
        _ => false,
    };
    if !depth_allowed || compression != 0 || filter != 0 || interlace > 1 {
        return Err(PhotoError::Malformed("png: invalid IHDR fields"));
    }
    Ok((width, height, colour))
}

/// CRC-32 (ISO 3309 / ITU-T V.42, reflected polynomial 0xEDB88320) as PNG uses it.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut n = 0;
        while n < 256 {
            let mut c = n as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 == 1 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            table[n] = c;
            n += 1;
        }
        table
    };
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc = TABLE[usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    crc ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_GPS: &[u8] = b"GPS 22.27N 109.98E";
    const SECRET_MAKE: &[u8] = b"Make: HUAWEI";

    /// A complete 1x1 greyscale baseline JPEG, built by hand: one quantisation table, one
    /// one-symbol Huffman table each for DC and AC, and a scan of two bits (DC difference 0,
    /// end of block) padded with ones. It decodes to a single mid-grey pixel.
    const SOF0: [u8; 13] = [
        0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00,
    ];

    fn segment(marker: u8, body: &[u8]) -> Vec<u8> {
        let length = u16::try_from(body.len() + 2).expect("test segment fits in a u16 length");
        let mut out = vec![0xFF, marker];
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn jfif(thumbnail: Option<&[u8]>) -> Vec<u8> {
        let mut body = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01".to_vec();
        match thumbnail {
            // A 1x1 RGB thumbnail: three bytes that could show anything.
            Some(pixel) => body.extend_from_slice(&[&[1u8, 1][..], pixel].concat()),
            None => body.extend_from_slice(&[0, 0]),
        }
        segment(APP0, &body)
    }

    fn jpeg_tables() -> Vec<u8> {
        let mut dqt = vec![0x00];
        dqt.extend_from_slice(&[1; 64]);
        let mut huffman_dc = vec![0x00, 1];
        huffman_dc.extend_from_slice(&[0; 15]);
        huffman_dc.push(0x00);
        let mut huffman_ac = huffman_dc.clone();
        huffman_ac[0] = 0x10;
        [
            segment(0xDB, &dqt),
            segment(0xC4, &huffman_dc),
            segment(0xC4, &huffman_ac),
        ]
        .concat()
    }

    fn jpeg_scan() -> Vec<u8> {
        let mut scan = segment(SOS, &[0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]);
        scan.extend_from_slice(&[0x3F, 0xFF, EOI]);
        scan
    }

    fn minimal_jpeg() -> Vec<u8> {
        [
            &[0xFF, SOI][..],
            &jfif(None),
            &jpeg_tables(),
            &SOF0,
            &jpeg_scan(),
        ]
        .concat()
    }

    /// The minimal JPEG as a phone would send it: Exif with location and device, XMP, an ICC
    /// profile, a comment, a JFIF thumbnail and a video appended after EOI.
    fn phone_jpeg() -> Vec<u8> {
        let exif = [&b"Exif\0\0"[..], SECRET_GPS, b" ", SECRET_MAKE].concat();
        let xmp = [
            &b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>"[..],
            SECRET_MAKE,
        ]
        .concat();
        let icc = [&b"ICC_PROFILE\0\x01\x01desc "[..], SECRET_MAKE].concat();
        [
            &[0xFF, SOI][..],
            &jfif(Some(b"THB")),
            &segment(0xE1, &exif),
            &segment(0xE1, &xmp),
            &segment(0xE2, &icc),
            &segment(0xFE, SECRET_GPS),
            &jpeg_tables(),
            &SOF0,
            &jpeg_scan(),
            b"ftypmp42 motion photo video",
        ]
        .concat()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let length = u32::try_from(data.len()).expect("test chunk fits in a u32 length");
        let mut out = length.to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc32(&[&kind[..], data].concat()).to_be_bytes());
        out
    }

    /// IHDR of a 1x1, 8-bit greyscale image.
    const IHDR_1X1: [u8; 13] = [0, 0, 0, 1, 0, 0, 0, 1, 8, 0, 0, 0, 0];
    /// zlib stream (one stored deflate block) of the scanline [filter 0, pixel 0xFF].
    const IDAT_1X1_WHITE: [u8; 13] = [
        0x78, 0x01, 0x01, 0x02, 0x00, 0xFD, 0xFF, 0x00, 0xFF, 0x01, 0x01, 0x01, 0x00,
    ];

    fn minimal_png() -> Vec<u8> {
        [
            &PNG_SIGNATURE[..],
            &png_chunk(b"IHDR", &IHDR_1X1),
            &png_chunk(b"IDAT", &IDAT_1X1_WHITE),
            &png_chunk(b"IEND", &[]),
        ]
        .concat()
    }

    fn phone_png() -> Vec<u8> {
        [
            &PNG_SIGNATURE[..],
            &png_chunk(b"IHDR", &IHDR_1X1),
            &png_chunk(b"gAMA", &45455u32.to_be_bytes()),
            &png_chunk(b"eXIf", &[&b"MM\0*"[..], SECRET_GPS].concat()),
            &png_chunk(b"tEXt", &[&b"Comment\0"[..], SECRET_MAKE].concat()),
            &png_chunk(
                b"iTXt",
                &[&b"XML:com.adobe.xmp\0\0\0\0\0"[..], SECRET_GPS].concat(),
            ),
            &png_chunk(b"tIME", &[0x07, 0xE9, 6, 1, 12, 0, 0]),
            &png_chunk(b"iCCP", &[&b"HUAWEI P60\0\0"[..], SECRET_MAKE].concat()),
            &png_chunk(b"prVt", SECRET_GPS),
            &png_chunk(b"IDAT", &IDAT_1X1_WHITE),
            &png_chunk(b"IEND", &[]),
            SECRET_MAKE,
        ]
        .concat()
    }

    #[test]
    fn crc32_matches_the_standard_check_values() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn jpeg_loses_exif_xmp_icc_comment_thumbnail_and_trailer() {
        let photo = clean(&phone_jpeg()).expect("phone jpeg is well formed");

        assert_eq!(photo.kind, PhotoKind::Jpeg);
        assert_eq!((photo.width, photo.height), (1, 1));
        assert!(!contains(&photo.bytes, SECRET_GPS));
        assert!(!contains(&photo.bytes, SECRET_MAKE));
        assert!(!contains(&photo.bytes, b"THB"));
        assert!(!contains(&photo.bytes, b"motion photo"));
        assert!(photo.bytes.starts_with(&[0xFF, 0xD8]));
        assert!(photo.bytes.ends_with(&[0xFF, 0xD9]));
        // What remains is exactly the image without metadata, JFIF header included.
        assert_eq!(photo.bytes, minimal_jpeg());
        assert_eq!(photo.sha256, <[u8; 32]>::from(Sha256::digest(&photo.bytes)));
    }

    #[test]
    fn clean_jpeg_is_left_unchanged() {
        let photo = clean(&minimal_jpeg()).expect("minimal jpeg is well formed");
        assert_eq!(photo.bytes, minimal_jpeg());
    }

    #[test]
    fn jpeg_adobe_segment_is_kept_for_colour_decoding() {
        let adobe = segment(APP14, b"Adobe\0\x64\0\0\0\0\x01");
        let input = [
            &[0xFF, SOI][..],
            &adobe,
            &jpeg_tables(),
            &SOF0,
            &jpeg_scan(),
        ]
        .concat();

        let photo = clean(&input).expect("jpeg with adobe segment is well formed");

        assert_eq!(photo.bytes, input);
    }

    #[test]
    fn jpeg_dimensions_come_from_progressive_frame_header() {
        let sof2 = [
            0xFF, 0xC2, 0x00, 0x11, 0x08, 0x0F, 0xA0, 0x0B, 0xB8, 0x03, 0x01, 0x22, 0x00, 0x02,
            0x11, 0x01, 0x03, 0x11, 0x01,
        ];
        let input = [&[0xFF, SOI][..], &jpeg_tables(), &sof2, &jpeg_scan()].concat();

        let photo = clean(&input).expect("progressive header is well formed");

        assert_eq!((photo.width, photo.height), (3000, 4000));
    }

    #[test]
    fn jpeg_scan_with_stuffed_bytes_and_restart_markers_is_copied_verbatim() {
        let mut input = [&[0xFF, SOI][..], &jpeg_tables(), &SOF0].concat();
        input.extend_from_slice(&segment(SOS, &[0x01, 0x01, 0x00, 0x00, 0x3F, 0x00]));
        input.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, EOI]);

        let photo = clean(&input).expect("scan with stuffing is well formed");

        assert!(
            photo
                .bytes
                .ends_with(&[0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, EOI])
        );
    }

    #[test]
    fn truncated_jpeg_is_malformed() {
        let full = phone_jpeg();
        let eoi_end = full.len() - b"ftypmp42 motion photo video".len();
        // Cut inside the JFIF header, the Exif segment, the tables, the scan, and inside EOI.
        for cut in [3, 30, 200, eoi_end - 4, eoi_end - 1] {
            let result = clean(&full[..cut]);
            assert!(
                matches!(result, Err(PhotoError::Malformed(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn jpeg_without_scan_is_malformed() {
        let input = [&[0xFF, SOI][..], &jpeg_tables(), &SOF0, &[0xFF, EOI][..]].concat();
        assert!(matches!(clean(&input), Err(PhotoError::Malformed(_))));
    }

    #[test]
    fn jpeg_segment_length_past_end_is_malformed() {
        let mut input = minimal_jpeg();
        // Claim the JFIF segment is 0x7000 bytes long.
        input[4] = 0x70;
        assert!(matches!(clean(&input), Err(PhotoError::Malformed(_))));
    }

    #[test]
    fn png_loses_exif_text_time_icc_private_chunks_and_trailer() {
        let photo = clean(&phone_png()).expect("phone png is well formed");

        assert_eq!(photo.kind, PhotoKind::Png);
        assert_eq!((photo.width, photo.height), (1, 1));
        assert!(!contains(&photo.bytes, SECRET_GPS));
        assert!(!contains(&photo.bytes, SECRET_MAKE));
        for dropped in [b"eXIf", b"tEXt", b"iTXt", b"tIME", b"iCCP", b"prVt"] {
            assert!(!contains(&photo.bytes, dropped), "{dropped:?} kept");
        }
        for kept in [b"IHDR", b"gAMA", b"IDAT", b"IEND"] {
            assert!(contains(&photo.bytes, kept), "{kept:?} dropped");
        }
        assert!(photo.bytes.ends_with(&png_chunk(b"IEND", &[])));
        // Cleaning verifies every CRC, so a second pass proves the output's CRCs are valid.
        let again = clean(&photo.bytes).expect("cleaned png is well formed");
        assert_eq!(again.bytes, photo.bytes);
    }

    #[test]
    fn png_with_bad_crc_is_malformed() {
        let mut input = minimal_png();
        let idat_data = PNG_SIGNATURE.len() + 25 + 8;
        input[idat_data] ^= 0x01;
        assert_eq!(
            clean(&input),
            Err(PhotoError::Malformed("png: chunk CRC mismatch"))
        );
    }

    #[test]
    fn truncated_png_is_malformed() {
        let full = minimal_png();
        for cut in [10, 20, 40, full.len() - 1] {
            let result = clean(&full[..cut]);
            assert!(
                matches!(result, Err(PhotoError::Malformed(_))),
                "cut at {cut}: {result:?}"
            );
        }
    }

    #[test]
    fn png_with_unknown_critical_chunk_is_malformed() {
        let input = [
            &PNG_SIGNATURE[..],
            &png_chunk(b"IHDR", &IHDR_1X1),
            &png_chunk(b"ABCD", &[]),
            &png_chunk(b"IDAT", &IDAT_1X1_WHITE),
            &png_chunk(b"IEND", &[]),
        ]
        .concat();
        assert!(matches!(clean(&input), Err(PhotoError::Malformed(_))));
    }

    #[test]
    fn damaged_files_are_refused_or_cleaned_but_never_panic() {
        for original in [phone_jpeg(), phone_png()] {
            for cut in 0..original.len() {
                let _ = clean(&original[..cut]);
            }
            for at in 0..original.len() {
                for value in [0x00, 0x01, 0x7F, 0xFF, original[at] ^ 0x80] {
                    let mut damaged = original.clone();
                    damaged[at] = value;
                    if let Ok(photo) = clean(&damaged) {
                        assert_eq!(clean(&photo.bytes).map(|p| p.bytes), Ok(photo.bytes));
                    }
                }
            }
        }
    }

    #[test]
    fn other_formats_are_not_images_whatever_their_name() {
        let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04";
        let pdf = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
        let webp = b"RIFF\x24\x00\x00\x00WEBPVP8 ";
        for bytes in [&gif[..], &pdf[..], &webp[..], &[], &[0xFF, 0xD8]] {
            assert_eq!(clean(bytes), Err(PhotoError::NotAnImage));
        }
    }

    #[test]
    fn oversize_upload_is_refused_before_parsing() {
        let mut bytes = minimal_jpeg();
        bytes.resize(MAX_PHOTO_BYTES + 1, 0);
        assert_eq!(clean(&bytes), Err(PhotoError::TooLarge));
        assert_eq!(PhotoError::TooLarge.message_zh(), "照片不能超过10MB");
    }

    #[test]
    fn errors_read_in_chinese_for_the_reporter() {
        assert_eq!(
            PhotoError::NotAnImage.message_zh(),
            "只能上传JPG或PNG格式的照片"
        );
        assert_eq!(
            PhotoError::Malformed("png: no IDAT").message_zh(),
            "照片文件已损坏，请重新拍摄或选择"
        );
    }

    #[test]
    #[ignore = "writes sample files for checking with external decoders"]
    fn write_samples_for_external_decoders() {
        let dir = std::env::temp_dir();
        let jpeg = clean(&phone_jpeg()).expect("phone jpeg is well formed");
        let png = clean(&phone_png()).expect("phone png is well formed");
        std::fs::write(dir.join("whistle-clean.jpg"), jpeg.bytes).expect("write sample");
        std::fs::write(dir.join("whistle-clean.png"), png.bytes).expect("write sample");
        std::fs::write(dir.join("whistle-phone.jpg"), phone_jpeg()).expect("write sample");
        std::fs::write(dir.join("whistle-phone.png"), phone_png()).expect("write sample");
    }

    /// Bounded fuzzing of the sanitizer: edited phone photos and raw bytes end in a
    /// clean photo or an error, never a panic. A long run is
    /// `PROPTEST_CASES=1000000 cargo test -p huimin-whistle fuzz_photos` (nextest stops a test at 180 s).
    mod fuzz {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            #[test]
            fn fuzz_photos_clean(
                seed in 0..3usize,
                edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0..3u8), 0..16),
            ) {
                let mut bytes = match seed {
                    0 => phone_jpeg(),
                    1 => phone_png(),
                    _ => Vec::new(),
                };
                for (at, byte, kind) in edits {
                    let at = at % (bytes.len() + 1);
                    match kind {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 => bytes.insert(at, byte),
                        _ => bytes.truncate(at),
                    }
                }
                if let Ok(photo) = clean(&bytes) {
                    // What comes out is itself a photo the sanitizer accepts.
                    prop_assert!(clean(&photo.bytes).is_ok());
                }
            }
        }
    }
}
