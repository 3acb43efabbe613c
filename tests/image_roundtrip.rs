//! Loading and re-saving the base image.

use tracevm::image;

fn base_image() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/images/SmallWorld-2015.image"))
        .expect("the base image is at ../shared/images/")
}

#[test]
fn resave_of_base_image_is_byte_identical() {
    let data = base_image();
    let img = image::load(&data).unwrap();
    assert_eq!(img.record_count, 5125);
    let saved = image::save(&img.roots);
    assert_eq!(saved.len(), data.len());
    assert!(saved == data, "re-saved image differs from the original");
}
