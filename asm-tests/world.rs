//! A small heap for the tests whose traces call the runtime (`New`, `Call`): one class object
//! (its own class), a stand-in for nil, and a `Runtime` to compile with and attach the heap to.

use super::K;
use tracevm::heap::{Heap, Value};
use tracevm::jit::runtime::{Objects, Runtime};

pub struct World {
    pub heap: Heap,
    pub class: Value,
    pub nil: Value,
    pub runtime: Box<Runtime>,
}

pub fn world() -> World {
    let mut heap = Heap::new();
    let class = heap.alloc_pointers(Value::from_int(0), 5, Value::from_int(0));
    class.set_obj_class(class);
    let nil = heap.alloc_pointers(class, 0, Value::from_int(0));
    World { heap, class, nil, runtime: Box::default() }
}

impl World {
    /// Lets compiled code's helpers allocate in this heap (until `runtime.detach()`); they
    /// answer `K`'s true and false.
    pub fn attach(&mut self) {
        self.runtime.attach(&mut self.heap, Objects { nil: self.nil, true_: K.true_, false_: K.false_ });
    }
}
