//! Image bytes → normalised float32 pixels, as a [`ModelSpec`] says.

use crate::spec::{ChannelOrder, Layout, ModelSpec};
use crate::Error;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use std::io::Cursor;

/// Images with a side shorter than this many pixels are refused ([`Error::ImageTooSmall`]):
/// upscaled that far, they carry too little to classify and are more likely a mistake (an icon,
/// a tracking pixel) than a photo.
pub const MIN_IMAGE_SIDE: u32 = 16;

/// Images with a side longer than this many pixels are refused before decoding
/// ([`Error::ImageTooLarge`]), as are images needing more than 512 MiB to decode.
pub const MAX_IMAGE_SIDE: u32 = 16384;

/// Images whose long side is more than this many times the short side are refused
/// ([`Error::ImageTooElongated`]): resizing the short side to the model's size would blow the long
/// side up (a 16 x 16384 strip would become 256 x 262144), and the centre crop would see a
/// sliver of it anyway.
pub const MAX_ASPECT_RATIO: u32 = 10;

/// Bytes of decoded pixels an image may need.
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// Decode `bytes` into 8-bit RGB, upright as its EXIF orientation says (alpha is dropped, 16-bit
/// samples are rounded to 8 bits).
pub(crate) fn decode(bytes: &[u8]) -> Result<RgbImage, Error> {
    let format = image::guess_format(bytes).map_err(|_| Error::NotAnImage)?;
    if !format.reading_enabled() {
        return Err(Error::UnsupportedImageFormat(format_name(format)));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills missing data with grey rather than failing; a classification of
        // half an image should not pass for one of the whole.
        return Err(Error::ImageDecode(
            "the JPEG is truncated (no end-of-image marker)".into(),
        ));
    }
    // The header alone first: refuse a wrong size before decoding (decoders reject some
    // zero-sized images with less helpful messages).
    if let Ok((width, height)) =
        ImageReader::with_format(Cursor::new(bytes), format).into_dimensions()
    {
        check_size(width, height)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    let decode_error = |e| match e {
        ImageError::Limits(e) => Error::ImageTooLarge(e.to_string()),
        ImageError::Unsupported(e) => Error::UnsupportedImageFormat(e.to_string()),
        other => Error::ImageDecode(other.to_string()),
    };
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    // Photos from phones and cameras are often stored sideways with an EXIF tag saying how to
    // show them; the model was trained on upright pictures, so classify the picture as a viewer
    // shows it. An unreadable tag is ignored, as viewers do.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    image.apply_orientation(orientation);
    check_size(image.width(), image.height())?;
    Ok(image.into_rgb8())
}

fn check_size(width: u32, height: u32) -> Result<(), Error> {
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::ImageTooLarge(format!(
            "it is {width}x{height}; each side may be at most {MAX_IMAGE_SIDE} pixels"
        )));
    }
    if width < MIN_IMAGE_SIDE || height < MIN_IMAGE_SIDE {
        return Err(Error::ImageTooSmall {
            width,
            height,
            min: MIN_IMAGE_SIDE,
        });
    }
    let (short, long) = (width.min(height), width.max(height));
    if u64::from(long) > u64::from(short) * u64::from(MAX_ASPECT_RATIO) {
        return Err(Error::ImageTooElongated {
            width,
            height,
            max_ratio: MAX_ASPECT_RATIO,
        });
    }
    Ok(())
}

/// Walk a JPEG's marker segments and entropy-coded data and say whether the end-of-image marker
/// is reached before the bytes run out (bytes after it are allowed, as many cameras append some).
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    const SOI: u8 = 0xd8;
    const EOI: u8 = 0xd9;
    const SOS: u8 = 0xda;
    if bytes.get(..2) != Some(&[0xff, SOI]) {
        return false;
    }
    let mut pos = 2;
    loop {
        // A marker: one or more 0xff fill bytes, then the code.
        if bytes.get(pos) != Some(&0xff) {
            return false;
        }
        while bytes.get(pos) == Some(&0xff) {
            pos += 1;
        }
        let Some(&code) = bytes.get(pos) else {
            return false;
        };
        pos += 1;
        match code {
            EOI => return true,
            // Standalone markers: TEM, RSTn.
            0x01 | 0xd0..=0xd7 => continue,
            _ => {}
        }
        let Some(&[hi, lo]) = bytes.get(pos..pos + 2) else {
            return false;
        };
        let length = usize::from(u16::from_be_bytes([hi, lo]));
        if length < 2 {
            return false;
        }
        pos += length;
        if code == SOS {
            // Entropy-coded data runs to the next marker that is neither a stuffed 0xff00 nor a
            // restart marker.
            loop {
                match bytes.get(pos..pos + 2) {
                    None => return false,
                    Some(&[0xff, next]) if next != 0x00 && !(0xd0..=0xd7).contains(&next) => break,
                    Some(_) => pos += 1,
                }
            }
        }
    }
}

fn format_name(format: ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map_or_else(|| format!("{format:?}"), |e| e.to_uppercase())
}

/// Resize the shorter side, centre-crop and normalise; returns the tensor's data in
/// `spec.input_shape()` order.
pub(crate) fn to_tensor_data(image: &RgbImage, spec: &ModelSpec) -> Result<Vec<f32>, Error> {
    let (width, height) = image.dimensions();
    let (short, long) = (u64::from(width.min(height)), u64::from(width.max(height)));
    let target = u64::from(spec.resize_shorter);
    // The longer side keeps the aspect ratio, rounded to the nearest pixel (halves up), as the
    // reference pipeline (Pillow) did; torchvision truncates instead, which moves the crop by up
    // to half a pixel. `decode` bounds the aspect ratio, so this fits in u32.
    let short = short.max(1);
    let scaled_long = u32::try_from((2 * long * target + short) / (2 * short)).map_err(|_| {
        Error::ImageTooElongated {
            width,
            height,
            max_ratio: MAX_ASPECT_RATIO,
        }
    })?;
    let (new_w, new_h) = if width <= height {
        (spec.resize_shorter, scaled_long)
    } else {
        (scaled_long, spec.resize_shorter)
    };
    // The pixels are the caller's secret: this copy is wiped when dropped, on every path.
    let resized = zeroize::Zeroizing::new(
        if (new_w, new_h) == (width, height) {
            image.clone()
        } else {
            image::imageops::resize(image, new_w, new_h, FilterType::Triangle)
        }
        .into_raw(),
    );

    let (crop_w, crop_h) = (spec.width as usize, spec.height as usize);
    let (new_w, new_h) = (new_w as usize, new_h as usize);
    if new_w < crop_w || new_h < crop_h {
        // Unreachable for a validated spec (resize_shorter >= max(width, height)).
        return Err(Error::SpecValue {
            key: "resize_shorter",
            reason: format!(
                "gives a {new_w}x{new_h} image, smaller than the {crop_w}x{crop_h} crop"
            ),
        });
    }
    let (x0, y0) = ((new_w - crop_w) / 2, (new_h - crop_h) / 2);

    // One lookup table per image channel: (p / 255 - mean) / std, computed in f32 as a NumPy
    // float32 pipeline would.
    let mut lut = [[0f32; 256]; 3];
    for (c, table) in lut.iter_mut().enumerate() {
        for (p, v) in table.iter_mut().enumerate() {
            *v = (p as f32 / 255.0 - spec.mean[c]) / spec.std[c];
        }
    }
    // Output channel k reads image channel order[k].
    let order = match spec.channel_order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };

    let raw = &resized[..];
    let plane = crop_w * crop_h;
    let mut data = vec![0f32; 3 * plane];
    for y in 0..crop_h {
        let start = ((y0 + y) * new_w + x0) * 3;
        let row = raw.get(start..start + crop_w * 3).ok_or_else(|| {
            Error::run(format!(
                "internal: crop row {y} outside the resized {new_w}x{new_h} image"
            ))
        })?;
        for (x, px) in row.chunks_exact(3).enumerate() {
            for (k, &c) in order.iter().enumerate() {
                let v = lut[c][usize::from(px[c])];
                let at = match spec.layout {
                    Layout::Nchw => k * plane + y * crop_w + x,
                    Layout::Nhwc => (y * crop_w + x) * 3 + k,
                };
                data[at] = v;
            }
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_4x2(layout: Layout, channel_order: ChannelOrder) -> ModelSpec {
        ModelSpec {
            name: None,
            input_name: None,
            width: 4,
            height: 2,
            resize_shorter: 4,
            mean: [0.0; 3],
            std: [1.0; 3],
            layout,
            channel_order,
        }
    }

    /// A 4x4 image whose pixel (x, y) is (x, y, 100 + x + 4y): crop rows 1..3.
    fn image() -> RgbImage {
        RgbImage::from_fn(4, 4, |x, y| {
            image::Rgb([x as u8, y as u8, (100 + x + 4 * y) as u8])
        })
    }

    #[test]
    fn nchw_rgb_crops_the_centre() {
        let d = to_tensor_data(&image(), &spec_4x2(Layout::Nchw, ChannelOrder::Rgb)).unwrap();
        let px = |p: u32| p as f32 / 255.0;
        // channel R, row 0 of the crop = image row 1
        assert_eq!(&d[0..4], &[px(0), px(1), px(2), px(3)]);
        // channel G, row 1 = image row 2
        assert_eq!(&d[8 + 4..8 + 8], &[px(2); 4]);
        // channel B, (x=0, y=0) = image (0, 1)
        assert_eq!(d[16], px(104));
    }

    #[test]
    fn jpeg_completeness() {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&image())
            .unwrap();
        assert!(jpeg_is_complete(&out));
        let mut trailing = out.clone();
        trailing.extend_from_slice(b"trailing bytes");
        assert!(jpeg_is_complete(&trailing));
        for cut in 0..out.len() - 1 {
            assert!(!jpeg_is_complete(&out[..cut]), "cut at {cut}");
        }
        assert!(!jpeg_is_complete(b"\xff\xd8\xff\xda\x00\x00"));
    }

    /// `jpeg` with an EXIF APP1 segment carrying `orientation`, right after SOI.
    fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = b"MM\0\x2a\0\0\0\x08".to_vec(); // big-endian, IFD at offset 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // value padding, no next IFD
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied() {
        // 64 x 32, white with a red 16 x 16 block in the top-left corner.
        let stored = RgbImage::from_fn(64, 32, |x, y| {
            if x < 16 && y < 16 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&stored)
            .unwrap();
        let red = |img: &RgbImage, x: u32, y: u32| {
            let p = img.get_pixel(x, y);
            p[0] > 200 && p[1] < 60 && p[2] < 60
        };

        let plain = decode(&jpeg).unwrap();
        assert_eq!(plain.dimensions(), (64, 32));
        assert!(red(&plain, 4, 4));

        let upright = decode(&with_exif_orientation(&jpeg, 1)).unwrap();
        assert_eq!(upright.dimensions(), (64, 32));
        assert!(red(&upright, 4, 4));

        // 6: shown rotated 90° clockwise, so the top-left corner goes to the top right.
        let turned = decode(&with_exif_orientation(&jpeg, 6)).unwrap();
        assert_eq!(turned.dimensions(), (32, 64));
        assert!(red(&turned, 27, 4), "the red block is top right");
        assert!(!red(&turned, 4, 4));

        // 3: rotated 180°: bottom right.
        let flipped = decode(&with_exif_orientation(&jpeg, 3)).unwrap();
        assert_eq!(flipped.dimensions(), (64, 32));
        assert!(red(&flipped, 59, 27));
        assert!(!red(&flipped, 4, 4));

        // A nonsense orientation value is ignored, not an error.
        let odd = decode(&with_exif_orientation(&jpeg, 99)).unwrap();
        assert_eq!(odd.dimensions(), (64, 32));
    }

    #[test]
    fn nhwc_bgr_interleaves_reversed() {
        let d = to_tensor_data(&image(), &spec_4x2(Layout::Nhwc, ChannelOrder::Bgr)).unwrap();
        let px = |p: u32| p as f32 / 255.0;
        // (x=1, y=0) = image (1, 1): B, G, R
        assert_eq!(&d[3..6], &[px(105), px(1), px(1)]);
    }
}
