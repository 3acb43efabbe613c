//! The native compiler builds exactly the Method the image's own compiler builds, or declines.
//!
//! Each source is compiled twice into the same class: by `Class>>parseMethod:` running in the
//! image, and by `tracevm::compiler`. When the image compiles it, the native compiler must give
//! the same name, bytecodes, literals (same classes, bytes, values, Float bits), stack size,
//! temporary size, class and text, or decline as a `Quirk` (something it knowingly leaves to the
//! image). When the image rejects it, the native compiler must decline too.
//!
//! Sources: every method of the base image (its own text, into its own class), every METHOD and
//! META chunk of `../shared/bench`, hand-written edge cases of the lexer and encoder, generated
//! methods, and `-e` expressions. Also checked: the watch turns the native compiler off when a
//! method the image's compiler runs is redefined, and the installation matches `compileMethod:`.

mod inproc;

use inproc::{image, Capture};
use proptest::prelude::*;
use tracevm::compiler::{self, Decline};
use tracevm::heap::{Kind, Value};
use tracevm::interp::{class, meth, Vm};

fn vm() -> Vm {
    let mut vm = tracevm::boot::boot(image()).expect("boot");
    vm.out = Box::new(Capture::default());
    vm.err = Box::new(Capture::default());
    vm
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Same,
    Declined,
    BothRejected,
}

fn text(v: Value) -> String {
    String::from_utf8_lossy(v.bytes()).into_owned()
}

/// Equal as literals: the same object, or objects of one class with the same contents.
fn same_literal(a: Value, b: Value) -> bool {
    if a == b {
        return true;
    }
    if a.is_int() || b.is_int() || a.obj_class() != b.obj_class() || a.kind() != b.kind() {
        return false;
    }
    match a.kind() {
        Kind::Bytes => a.bytes() == b.bytes(),
        Kind::Float => a.float().to_bits() == b.float().to_bits(),
        Kind::Pointers => a.len() == b.len() && (0..a.len()).all(|i| same_literal(a.slot(i), b.slot(i))),
        _ => false,
    }
}

fn assert_same_method(image: Value, native: Value, source: &str) {
    let field = |m: Value, i: usize| m.slot(i);
    assert_eq!(text(field(native, meth::NAME)), text(field(image, meth::NAME)), "name of {source:?}");
    assert_eq!(
        field(native, meth::BYTECODES).bytes(),
        field(image, meth::BYTECODES).bytes(),
        "bytecodes of {source:?}"
    );
    assert_eq!(field(native, meth::BYTECODES).obj_class(), field(image, meth::BYTECODES).obj_class());
    let (nl, il) = (field(native, meth::LITERALS), field(image, meth::LITERALS));
    assert_eq!(nl.obj_class(), il.obj_class(), "literal frame class of {source:?}");
    assert_eq!(nl.len(), il.len(), "literal count of {source:?}");
    for i in 0..nl.len() {
        assert!(same_literal(nl.slot(i), il.slot(i)), "literal {i} of {source:?}");
    }
    for i in [meth::STACK_SIZE, meth::TEMP_SIZE, meth::CLASS, meth::TEXT] {
        assert_eq!(field(native, i), field(image, i), "Method slot {i} of {source:?}");
    }
    assert_eq!(native.obj_class(), image.obj_class());
    assert_eq!(native.len(), image.len());
}

/// Compiles `source` into `cls` both ways and checks that they agree.
fn compare(vm: &mut Vm, cls: Value, source: &[u8]) -> Outcome {
    let shown = String::from_utf8_lossy(source).into_owned();
    let t = vm.new_string(source);
    let by_image = vm.send_from_host(cls, "parseMethod:", &[t]).ok().filter(|&m| m != vm.k.nil);
    let by_native = compiler::parse_method_for(vm, cls, t);
    match (by_image, by_native) {
        (Some(m), Ok(n)) => {
            assert_same_method(m, n, &shown);
            Outcome::Same
        }
        (Some(_), Err(d)) => {
            eprintln!("declined ({d}): {shown:?}");
            assert!(
                matches!(d, Decline::Quirk(_)),
                "the native compiler rejects what the image compiles ({d}): {shown:?}"
            );
            Outcome::Declined
        }
        (None, Ok(_)) => panic!("the native compiler accepts what the image rejects: {shown:?}"),
        (None, Err(_)) => Outcome::BothRejected,
    }
}

fn all_methods(vm: &Vm) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    let m = vm.k.method;
    vm.heap.for_each_object(|o| {
        if o.obj_class() == m && o.len() == meth::SIZE {
            let (cls, t) = (o.slot(meth::CLASS), o.slot(meth::TEXT));
            if cls.is_ptr() && t.is_ptr() && t.kind() == Kind::Bytes {
                out.push((cls, t));
            }
        }
    });
    out
}

#[test]
fn every_method_of_the_image_compiles_the_same() {
    let mut vm = vm();
    let methods = all_methods(&vm);
    assert!(methods.len() >= 504, "found {} methods", methods.len());
    let mut tally = [0usize; 3];
    for (cls, t) in methods {
        let source = t.bytes().to_vec();
        let outcome = compare(&mut vm, cls, &source);
        tally[outcome as usize] += 1;
    }
    // Methods naming unregistered classes (Parser, Encoder, the nodes) fail in both compilers.
    eprintln!("same {}, declined {}, both rejected {}", tally[0], tally[1], tally[2]);
    assert!(tally[0] >= 450, "too few methods compiled natively: {tally:?}");
    assert!(tally[1] <= 5, "too many declined: {tally:?}");
}

/// File-in chunks of a program: (METHOD or META, class name, body).
fn chunks(src: &str) -> (Vec<String>, Vec<(bool, String, String)>) {
    let mut class_defs = Vec::new();
    let mut out = Vec::new();
    let mut lines = src.lines();
    while let Some(line) = lines.next() {
        if let Some(expr) = line.strip_prefix("EVAL ").filter(|e| e.contains("addNewClass:")) {
            class_defs.push(expr.to_string());
        } else if line.starts_with("METHOD") || line.starts_with("META") {
            let meta = line.starts_with("META");
            let name = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "!").collect();
            out.push((meta, name, body.join("\n") + "\n"));
        }
    }
    (class_defs, out)
}

#[test]
fn every_chunk_of_the_bench_corpus_compiles_the_same() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut same = 0;
    for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "st")) {
        let mut vm = vm();
        let (class_defs, methods) = chunks(&std::fs::read_to_string(path).unwrap());
        for def in class_defs {
            tracevm::boot::eval(&mut vm, &def, None).expect("class definition");
        }
        for (meta, name, body) in methods {
            let mut cls = vm.find_registered_class(&name).expect("class");
            if meta {
                cls = vm.class_of(cls);
            }
            let outcome = compare(&mut vm, cls, body.as_bytes());
            assert_eq!(outcome, Outcome::Same, "{}: {name} {body}", path.display());
            same += 1;
            let t = vm.new_string(body.as_bytes());
            compiler::compile_method_into(&mut vm, cls, t).expect("install");
        }
    }
    assert!(same > 100, "only {same} chunks");
}

/// Method sources that exercise the lexer's and encoder's corners, compiled into `Object`
/// (no instance variables) and into `Class` (instance and class variables).
const EDGE_CASES: &[&str] = &[
    "foo ^ 'it''s' , '''' , ''",
    "foo ^ $' printString + $  printString + $$ printString",
    "foo ^ $",
    "foo ^ - 5 + -7 - 3 -4",
    "foo ^ 3.14 + 0.5 + 10.25 + -0.0 + 1.0 + 0.1 + 2.675 + 99999.99999",
    "foo ^ 123456789.123456789",
    "foo ^ 3. + 4",
    "foo ^ 2147483647 + 2147483648",
    "foo ^ 1.0000000001",
    "foo ^ <3 self 4> + <41 (3 + 4) 'a'>",
    "foo ^ <300 self>",
    "foo ^ #(1 $a 'x' 2.5 -3 nil true (3 + 4) [5] Object foo)",
    "foo ^ #foo",
    "foo ^ super printString , super size",
    "foo ^ 3 + 4; + 5",
    "foo ^ 1 ) garbage that is never read",
    "foo \"comment\" ^ \"another\" 3 \"and\" + \"one\" 4 \"more\"",
    "foo ^ 3 \"unterminated",
    "foo ^ 'unterminated",
    "foo | a b | a <- b <- 3. ^ a",
    "foo: x bar: y | t | t <- x + y. ^ t",
    "foo: x bar: x ^ x",
    "+ arg ^ arg",
    "<= arg ^ self < arg",
    "foo | a | a <- 0. [a < 10] whileTrue: [a <- a + 1]. [a > 0] whileFalse: [a <- a - 1]. ^ a",
    "foo | b | b <- [true]. b whileTrue: [nil]. [false] whileTrue. ^ b",
    "foo ^ 3 > 4 ifTrue: ['a'] ifFalse: ['b']",
    "foo ^ (3 > 4) ifTrue: ['a'] ifFalse: 'b'",
    "foo ^ (3 > 4) ifFalse: ['a'] ifTrue: ['b']",
    "foo ^ (3 > 4) and: [5 < 6] or: [true]",
    "foo ^ ((3 > 4) and: [5 < 6]) or: [nil isNil]",
    "foo ^ self isNil notNil isNil",
    "foo ^ [:x :y | x + y] value: 1 value: 2",
    "foo ^ [:x | [:y | ^ x + y]] value: 1",
    "foo ^ [:x x]",
    "foo ^ [: x | x]",
    "foo ^ [:x | ]",
    "foo ^ []",
    "foo ^ [nil]. ",
    "foo ^ 3.",
    "foo 3. 4. ^ 5.",
    "foo | true | true <- 3. ^ true",
    "foo self <- 3",
    "foo ^ UnknownGlobal",
    "foo ^ Object new printString + Array name + String name",
    "foo ^ x <- 3",
    "foo",
    "",
    "123",
    "foo ^ (3",
    "foo ^ 3 foo: 4 bar: (5 baz: 6) qux",
    "foo ^ self a: 1 b: 2 c: 3 d: 4 e: 5 f: 6 g: 7 h: 8 i: 9 j: 10 k: 11 l: 12 m: 13 n: 14 o: 15 p: 16 q: 17",
    "foo ^ 'a' -> 'b' ~= 'c' == 'd' // 2 \\\\ 3",
    "foo ^ a:b",
    "foo ^ 3 foo:bar",
    "foo | a1 b2 | a1 <- 1. b2 <- a1+1. ^ b2-a1",
    "foo\n\t^\tself\tprintString\r\n",
    "foo ^ '\u{e9}t\u{e9}' size + 200",
    "foo ^ $\u{e9}",
    "foo ^ 3 @ 4 ; 5",
    "foo ^ classes size + parser size",
    "foo ^ name , methods size printString",
    "foo ^ name <- 'x'",
    "foo ^ classes <- 3",
    "foo: a ^ [:b | a + b] value: [:a | a] value",
    "foo [:a | a] value: 1. [:a | a] value: 2. ^ 3",
    "foo | t | [:a | t <- a] value: 1. ^ [:b | t + b] value: 2",
];

#[test]
fn edge_cases_compile_the_same() {
    let mut vm = vm();
    let targets = [vm.k.object, vm.k.class, vm.class_of(vm.k.class)];
    let mut tally = [0usize; 3];
    for &cls in &targets {
        for src in EDGE_CASES {
            tally[compare(&mut vm, cls, src.as_bytes()) as usize] += 1;
        }
    }
    eprintln!("same {}, declined {}, both rejected {}", tally[0], tally[1], tally[2]);
    assert!(tally[0] >= 90 && tally[2] >= 20 && tally[1] >= 3, "{tally:?}");
}

#[test]
fn a_method_branching_beyond_offset_255_is_rejected_by_both() {
    let mut vm = vm();
    let mut src = String::from("foo | a | a <- 0. ");
    for i in 0..60 {
        src += &format!("a > {i} ifTrue: [a <- a + {i}]. ");
    }
    src += "^ a";
    let object = vm.k.object;
    assert_eq!(compare(&mut vm, object, src.as_bytes()), Outcome::BothRejected);
}

#[test]
fn expressions_compile_the_same() {
    let mut vm = vm();
    let object = vm.k.object;
    for e in [
        "3 + 4",
        "#(1 $a 'x' 2.5 -3)",
        "[:x | x * 2] value: 21",
        "Object new",
        "(1 to: 10) inject: 0 into: [:a :b | a + b]",
    ] {
        let src = format!("doItCommand ^{e}");
        assert_eq!(compare(&mut vm, object, src.as_bytes()), Outcome::Same, "{e}");
    }
}

#[test]
fn installation_matches_compile_method() {
    // The same three methods installed natively into Object and by the image into Array.
    let mut vm = vm();
    let (object, array) = (vm.k.object, vm.k.array);
    for src in ["zzzLast ^ 1", "aaaFirst ^ 2", "mmmMiddle ^ 'm'", "zzzLast ^ 3"] {
        let t = vm.new_string(src.as_bytes());
        compiler::compile_method_into(&mut vm, object, t).expect("native");
        let t = vm.new_string(src.as_bytes());
        vm.send_from_host(array, "compileMethod:", &[t]).expect("image");
    }
    let names = |cls: Value| -> Vec<String> {
        let ms = cls.slot(class::METHODS);
        (0..ms.len()).map(|i| text(ms.slot(i).slot(meth::NAME))).collect()
    };
    let (o, a) = (names(object), names(array));
    let mut sorted = o.clone();
    sorted.sort_by(|x, y| x.bytes().map(|b| b as i8).cmp(y.bytes().map(|b| b as i8)));
    assert_eq!(o, sorted, "Object's methods are sorted");
    assert_eq!(o.iter().filter(|n| *n == "zzzLast").count(), 1);
    assert!(a.iter().any(|n| n == "aaaFirst") && a.iter().filter(|n| *n == "zzzLast").count() == 1);
    // The installed method answers, through the lookup caches.
    let r = vm.send_from_host(object, "zzzLast", &[]).expect("send");
    assert_eq!(r, Value::from_int(3));
}

#[test]
fn redefining_a_method_the_image_compiler_runs_turns_the_native_compiler_off() {
    let mut vm = vm();
    let object = vm.k.object;
    let string = vm.find_registered_class("String").unwrap();
    // A method of a class made by the program, and a new selector in an image class: harmless.
    tracevm::boot::eval(&mut vm, "Class addNewClass: (Object subclass: 'Foo' variables: 'a' classVariables: '')", None)
        .unwrap();
    let foo = vm.find_registered_class("Foo").unwrap();
    for (cls, src) in [(foo, "name ^ a"), (foo, "printString ^ 'Foo'"), (string, "zork ^ 1")] {
        let t = vm.new_string(src.as_bytes());
        compiler::compile_method_into(&mut vm, cls, t).expect("still native");
    }
    // The class side of a program's class is what the image's compiler sends `name` to.
    let meta = vm.class_of(foo);
    let t = vm.new_string(b"name ^ 'Bar'");
    vm.send_from_host(meta, "compileMethod:", &[t]).unwrap();
    let t = vm.new_string(b"foo ^ 1");
    assert_eq!(compiler::parse_method_for(&mut vm, object, t), Err(Decline::CompilerChanged));

    // An image method the compiler runs (String>>+ builds keyword selectors).
    let mut vm = self::vm();
    let string = vm.find_registered_class("String").unwrap();
    let t = vm.new_string(b"+ arg ^ <24 (arg printString) self>");
    vm.send_from_host(string, "compileMethod:", &[t]).unwrap();
    let object = vm.k.object;
    let t = vm.new_string(b"foo ^ 1");
    assert_eq!(compiler::parse_method_for(&mut vm, object, t), Err(Decline::CompilerChanged));
    assert!(vm.compiler_watch.selectors().any(|s| s == b"+"));
}

/// Method sources built from the grammar's pieces, valid or not.
fn source() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("self".to_string()),
        Just("super".to_string()),
        Just("nil".to_string()),
        Just("true".to_string()),
        Just("t".to_string()),
        Just("a".to_string()),
        Just("Object".to_string()),
        Just("Unknown".to_string()),
        (-300i64..3_000_000_000).prop_map(|i| i.to_string()),
        (0u32..100000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b}")),
        "[a-z ']{0,6}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[ -~]".prop_map(|c| format!("${c}")),
    ];
    let expr = atom.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop_oneof![Just("+"), Just("<"), Just("<="), Just("-"), Just("~="), Just(";"), Just(",")],
                inner.clone()
            )
                .prop_map(|(x, op, y)| format!("{x} {op} {y}")),
            (inner.clone(), prop_oneof![Just("foo"), Just("isNil"), Just("notNil"), Just("printString")])
                .prop_map(|(x, m)| format!("{x} {m}")),
            (
                inner.clone(),
                prop_oneof![Just("ifTrue:"), Just("ifFalse:"), Just("and:"), Just("or:"), Just("at:")],
                inner.clone()
            )
                .prop_map(|(x, k, y)| format!("({x}) {k} [{y}]")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, x, y)| format!("({c}) ifTrue: [{x}] ifFalse: [{y}]")),
            (inner.clone(), inner.clone()).prop_map(|(c, x)| format!("[{c}] whileTrue: [{x}]")),
            (inner.clone(), inner.clone()).prop_map(|(c, x)| format!("[:b | {c}. b] value: {x}")),
            inner.clone().prop_map(|x| format!("({x})")),
            inner.clone().prop_map(|x| format!("t <- {x}")),
            inner.clone().prop_map(|x| format!("^ {x}")),
            inner.clone().prop_map(|x| format!("#({x} 1 $a)")),
            inner.clone().prop_map(|x| format!("<4 {x}>")),
            inner.clone().prop_map(|x| format!("\"c\" {x} \"d\"")),
        ]
    });
    let header = prop_oneof![
        Just("foo"),
        Just("foo: a"),
        Just("+ a"),
        Just("foo: a bar: t"),
        Just("foo | t |"),
        Just("foo: a | t u |")
    ];
    (header, prop::collection::vec(expr, 1..4), prop::bool::ANY)
        .prop_map(|(h, stmts, dot)| format!("{h}\n\t{}{}", stmts.join(".\n\t"), if dot { "." } else { "" }))
}

/// A few characters of `base` replaced or dropped: sources that are almost valid.
fn mutated() -> impl Strategy<Value = String> {
    (source(), prop::collection::vec((any::<prop::sample::Index>(), "[ -~]?"), 1..4)).prop_map(|(mut s, edits)| {
        for (at, with) in edits {
            if s.is_empty() {
                break;
            }
            let i = at.index(s.len());
            if s.is_char_boundary(i) && s.is_char_boundary(i + 1) {
                s.replace_range(i..i + 1, &with);
            }
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn generated_methods_compile_the_same(src in prop_oneof![source(), mutated()]) {
        let mut vm = vm();
        let object = vm.k.object;
        compare(&mut vm, object, src.as_bytes());
    }
}

/// Files `program` in with the given compiler and answers what it printed.
fn run_program(program: &str, native: bool) -> (String, bool) {
    let mut vm = vm();
    let out = Capture::default();
    vm.out = Box::new(out.clone());
    if !native {
        vm.compiler_watch.disable();
    }
    let ok = tracevm::boot::file_in(&mut vm, program.as_bytes(), "program.st").is_ok();
    (out.text(), ok)
}

#[test]
fn programs_print_the_same_with_either_compiler() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/bench/");
    for name in ["redefine", "strings", "largeint", "sieve"] {
        let program = std::fs::read_to_string(format!("{dir}{name}.st")).unwrap();
        let expected = std::fs::read_to_string(format!("{dir}{name}.out")).unwrap();
        assert_eq!(run_program(&program, true), (expected.clone(), true), "{name} with the native compiler");
        assert_eq!(run_program(&program, false), (expected, true), "{name} with the image's compiler");
    }
    // A compile error is reported by the image's compiler either way.
    let bad = "METHOD Object\nfoo ^ (3\n!\n";
    assert_eq!(run_program(bad, true), run_program(bad, false));
}
