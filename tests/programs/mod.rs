//! Generated Smalltalk programs for differential tests: arithmetic near the 32-bit edges
//! (overflowing into LargePositive/LargeNegative), inlined and real loops (nested too), conditionals,
//! monomorphic, polymorphic and super sends, sends of inherited methods over several classes, closures over method temporaries, non-local returns
//! from blocks, Array and ByteArray reads and writes, and objects allocated in loops (`new`, `Array new:`). Every program terminates (loop bounds are small
//! constants) and prints its intermediate values, so two executions can be compared by output.

use proptest::prelude::*;

/// An integer expression.
pub fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop_oneof![
            Just(0),
            Just(1),
            Just(2),
            Just(7),
            Just(-5),
            Just(100),
            Just(46341),
            Just(65535),
            Just(2147483647),
            Just(-2147483647),
            -50i32..50
        ]
        .prop_map(|i| format!("({i})")),
        prop_oneof![Just("a"), Just("b"), Just("i")].prop_map(str::to_string),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop_oneof![Just("+"), Just("-"), Just("*")], inner.clone())
                .prop_map(|(x, op, y)| format!("({x} {op} {y})")),
            (prop_oneof![Just("p"), Just("q"), Just("r")], inner.clone()).prop_map(|(o, x)| format!("({o} val: {x})")),
            (inner.clone(), inner.clone()).prop_map(|(x, y)| format!("([:v | v + {x}] value: {y})")),
            inner.clone().prop_map(|x| format!("(GenP pick: {x})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, x, y)| format!("(({c} < 10) ifTrue: [{x}] ifFalse: [{y}])")),
            (1usize..4).prop_map(|k| format!("(arr at: {k})")),
            prop_oneof![Just("a"), Just("b"), Just("i")].prop_map(|v| format!("({v} rem: 7)")),
            inner.clone().prop_map(|x| format!("((GenCell new v: {x}) v)")),
            (0usize..6).prop_map(|k| format!("((Array new: {k}) size)")),
            (1usize..5).prop_map(|k| format!("(bytes at: {k})")),
        ]
    })
}

/// Block arguments are method temporaries in this compiler (a name may be declared once per
/// method), so each block in a statement gets its own argument name.
fn number_block_args(statement: String) -> String {
    let mut out = String::new();
    let mut rest = statement.as_str();
    let mut k = 0;
    while let Some(at) = rest.find("[:v | v + ") {
        out.push_str(&rest[..at]);
        out.push_str(&format!("[:v{k} | v{k} + "));
        rest = &rest[at + "[:v | v + ".len()..];
        k += 1;
    }
    out.push_str(rest);
    out
}

/// A statement (ending with a period).
pub fn statement() -> impl Strategy<Value = String> {
    statement_text().prop_map(number_block_args)
}

fn statement_text() -> impl Strategy<Value = String> {
    prop_oneof![
        expr().prop_map(|e| format!("a <- {e}.")),
        expr().prop_map(|e| format!("b <- {e}.")),
        expr().prop_map(|e| format!("Transcript show: {e} printString.")),
        (expr(), expr(), expr(), expr())
            .prop_map(|(x, y, t, f)| format!("({x} < {y}) ifTrue: [a <- {t}] ifFalse: [b <- {f}].")),
        (0usize..12).prop_map(|k| format!("i <- 0. [i < {k}] whileTrue: [a <- a + i. i <- i + 1].")),
        (0usize..12, expr()).prop_map(|(k, e)| format!("1 to: {k} do: [:j | b <- b + j + {e}].")),
        (1usize..4, expr()).prop_map(|(k, e)| format!("arr at: {k} put: {e}.")),
        expr().prop_map(|e| format!("objs do: [:o | a <- a + (o val: {e})].")),
        // `wt:` and `wts:` are GenP's, inherited by all but GenU (which overrides `wt:`): a site
        // over several classes finding one method.
        expr().prop_map(|e| format!("objs do: [:o | b <- b + (o wt: {e}) + (o wts: {e})].")),
        (0usize..4).prop_map(|k| format!("Transcript show: (GenP pick: {k}) printString.")),
        (0usize..12, expr())
            .prop_map(|(k, e)| format!("1 to: {k} do: [:j | cell <- GenCell new v: cell v + j + {e}].")),
        (0usize..12, expr()).prop_map(|(k, e)| format!(
            "i <- 0. [i < {k}] whileTrue: [cell <- GenCell new v: cell v + {e}. i <- i + 1]."
        )),
        (1usize..5, expr()).prop_map(|(k, e)| format!("bytes at: {k} put: ({e} rem: 256) abs.")),
        (0usize..12, expr()).prop_map(|(k, e)| format!(
            "1 to: {k} do: [:j | bytes at: (j rem: 4) + 1 put: ((bytes at: (j + 1 rem: 4) + 1) + {e} rem: 256) abs]."
        )),
        (0usize..12, prop_oneof![Just("GenP"), Just("GenQ"), Just("GenR"), Just("GenS"), Just("GenT"), Just("GenU")])
            .prop_map(|(k, c)| format!("1 to: {k} do: [:j | objs at: (j rem: 3) + 1 put: {c} new].")),
        // Nested loops: an inner loop that runs in a new block context every outer iteration,
        // a few iterations each (its trace is entered at its header from the outer loop's).
        (0usize..12, 1i32..5, expr()).prop_map(|(k, m, e)| format!(
            "1 to: {k} do: [:j | i <- 0. [i < (j rem: {m})] whileTrue: [a <- a + j + {e}. i <- i + 1]]."
        )),
        (0usize..10, 0usize..6, expr())
            .prop_map(|(k, m, e)| format!("1 to: {k} do: [:j | 1 to: {m} do: [:l | b <- b + (l * j) + {e}]].")),
    ]
}

/// A whole program in file-in format. Each statement is its own method (the image's compiler
/// cannot branch past byte 255 of a method, SMALLWORLD-VM.md §7.10); the state lives in
/// instance variables.
pub fn program() -> impl Strategy<Value = String> {
    prop::collection::vec(statement(), 1..12).prop_map(|body| {
        let steps: String =
            body.iter().enumerate().map(|(k, st)| format!("METHOD GenP\nstep{k}\n  {st}\n!\n")).collect();
        let calls: String = (0..body.len()).map(|k| format!("self step{k}. ")).collect();
        format!(
            "EVAL Class addNewClass: (Object subclass: 'GenP' variables: 'a b i p q r arr objs cell bytes' classVariables: 'k')
EVAL Class addNewClass: (Object subclass: 'GenCell' variables: 'v' classVariables: '')
EVAL Class addNewClass: (GenP subclass: 'GenQ' variables: '' classVariables: '')
EVAL Class addNewClass: (GenP subclass: 'GenR' variables: '' classVariables: '')
EVAL Class addNewClass: (GenP subclass: 'GenS' variables: '' classVariables: '')
EVAL Class addNewClass: (GenQ subclass: 'GenT' variables: '' classVariables: '')
EVAL Class addNewClass: (GenR subclass: 'GenU' variables: '' classVariables: '')
METHOD GenP
val: n
  ^ n + 1
!
METHOD GenP
wt: n
  ^ n * 3 - 1
!
METHOD GenP
wts: n
  ^ (self val: n) + 1
!
METHOD GenU
wt: n
  ^ n - 100
!
METHOD GenQ
val: n
  ^ (super val: n) * 2
!
METHOD GenR
val: n
  ^ n - 3
!
METHOD GenCell
v: n
  v <- n
!
METHOD GenCell
v
  ^ v
!
META GenP
pick: n
  #(1 2 3) do: [:e | e = n ifTrue: [^ e * 10]].
  ^ n
!
METHOD GenP
init
  a <- 1. b <- 2. i <- 0.
  p <- GenP new. q <- GenQ new. r <- GenR new.
  arr <- Array new: 3. arr at: 1 put: 0. arr at: 2 put: 0. arr at: 3 put: 0.
  objs <- Array new: 3. objs at: 1 put: p. objs at: 2 put: q. objs at: 3 put: r.
  cell <- GenCell new v: 0.
  bytes <- ByteArray new: 4
!
{steps}METHOD GenP
run
  self init. {calls}
  Transcript show: a printString.
  Transcript show: b printString.
  Transcript show: cell v printString.
  Transcript show: bytes printString
!
EVAL GenP new run
"
        )
    })
}
