//! The native compiler's bytecodes for small methods, checked against the encodings
//! SMALLWORLD-VM.md §8 gives (the whole-image comparison is in `tests/compiler.rs`).

use super::{compile, CompiledMethod, Decline, Literal};

fn compile_plain(src: &str) -> Result<CompiledMethod, Decline> {
    let inst = [b"x".to_vec()];
    compile(src.as_bytes(), &inst, &[], &mut |_| None)
}

#[test]
fn a_method_body_pops_each_statement_and_returns_self() {
    let m = compile_plain("foo 3. x").unwrap();
    assert_eq!(m.name, b"foo");
    // push 3; pop; push x; pop; return self
    assert_eq!(m.bytecodes, vec![0x53, 0xF5, 0x10, 0xF5, 0xF1]);
    assert_eq!((m.stack_size, m.temp_size), (6, 0));
}

#[test]
fn if_true_is_inlined_with_a_nil_else() {
    let m = compile_plain("foo ^ x ifTrue: [1]").unwrap();
    // 0: push x; 1: branch-if-false 6; 3: push 1; 4: branch 7; 6: push nil; 7: return
    assert_eq!(m.bytecodes, vec![0x10, 0xF8, 6, 0x51, 0xF6, 7, 0x5A, 0xF2, 0xF5, 0xF1]);
}

#[test]
fn while_true_is_inlined_only_with_two_literal_blocks() {
    let m = compile_plain("foo [x] whileTrue: [x <- 1]").unwrap();
    // 0: push x; 1: branch-if-false 8; 3: push 1; 4: store x; 5: pop; 6: branch 0; 8: push nil
    assert_eq!(m.bytecodes, vec![0x10, 0xF8, 8, 0x51, 0x60, 0xF5, 0xF6, 0, 0x5A, 0xF5, 0xF1]);
    let m = compile_plain("foo | b | b whileTrue: [1]").unwrap();
    assert!(m.literals.contains(&Literal::Str(b"whileTrue:".to_vec())));
}

#[test]
fn every_send_gets_its_own_literal_and_stack_size_counts_pushed_arguments() {
    let m = compile_plain("foo ^ (x bar: 1) bar: 2").unwrap();
    assert_eq!(m.literals, vec![Literal::Str(b"bar:".to_vec()), Literal::Str(b"bar:".to_vec())]);
    // The inner send's receiver and argument stay counted while the outer one pushes two more.
    assert_eq!(m.stack_size, 3 + 5);
}

#[test]
fn operands_of_sixteen_or_more_use_the_extended_form() {
    let args: String = (0..17).map(|i| format!("a{i}: {}", i + 10)).collect::<Vec<_>>().join(" ");
    let m = compile_plain(&format!("foo x bar. x {args}")).unwrap();
    // `bar` is literal 0 and the arguments 10..26 literals 1..17; the send marks 18 arguments
    // and names literal 18: both operands use the extended form, as does pushing literal 16.
    let tail = &m.bytecodes[m.bytecodes.len() - 6..];
    assert_eq!(tail, &[0x08, 18, 0x09, 18, 0xF5, 0xF1]);
    assert!(m.bytecodes.windows(2).any(|w| w == [0x04, 16]));
    assert!(m.bytecodes.contains(&0x4F));
}

#[test]
fn literals_are_read_as_the_image_reads_them() {
    let m = compile_plain("foo ^ #(-5 2.5 'it''s' $a 10)").unwrap();
    assert_eq!(
        m.literals,
        vec![
            Literal::Int(-5),
            Literal::Float(2.5),
            Literal::Str(b"it's".to_vec()),
            Literal::Char(b'a'),
            Literal::Int(10)
        ]
    );
    assert_eq!(compile_plain("foo ^ 2147483648"), Err(Decline::Quirk("literal beyond SmallInt")));
    assert!(matches!(compile_plain("foo ^ #bar"), Err(Decline::Error(_))));
    assert!(matches!(compile_plain("foo ^ Unknown"), Err(Decline::Error(_))));
}
