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

/// load → change → save → load → save: the second save is byte-identical to the first, so the
/// reloaded object graph is the saved one (same shapes, classes, slots, bytes and Floats).
#[test]
fn load_save_load_keeps_the_object_graph() {
    let mut vm = tracevm::boot::boot(&base_image()).unwrap();
    vm.out = Box::new(std::io::sink());
    let program = b"EVAL Class addNewClass: (Object subclass: 'Kept' variables: 'a b' classVariables: 'c')
META Kept
keep
  c <- Array new: 3. c at: 1 put: 2.5. c at: 2 put: 'text'. c at: 3 put: 100000 * 100000
!
EVAL Kept keep
";
    tracevm::boot::file_in(&mut vm, program, "kept.st").unwrap();
    let first = image::save(&vm.roots);
    let reloaded = image::load(&first).unwrap();
    let second = image::save(&reloaded.roots);
    assert_eq!(first.len(), second.len());
    assert!(first == second, "the reloaded graph saves differently");
    // The new class (its name) and its class variable's Float (type-3 record of 2.5) are in it.
    assert!(first.windows(4).any(|w| w == b"Kept"), "the new class was saved");
    let float_record: Vec<u8> = [6i32, 3].iter().flat_map(|i| i.to_be_bytes()).collect::<Vec<u8>>();
    assert!(first.windows(8).any(|w| w == float_record.as_slice()), "the Float was saved");
}
