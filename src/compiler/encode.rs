//! The image's `Encoder` and the nodes' `compile:block:` methods, ported: bytecodes, the literal
//! frame (one new literal per send, never shared) and the stack-size estimate, which counts
//! only what `evaluateArguments:` pushes and `sendMessage:` pops (SMALLWORLD-VM.md §3.5).

use super::parse::{Node, ParsedMethod};
use super::{CompiledMethod, Decline, Literal};

struct Encoder {
    /// Wider than a byte: the image's encoder keeps a List of integers and fails only when it
    /// converts it to a ByteArray.
    code: Vec<u32>,
    literals: Vec<Literal>,
    stack_size: i64,
    max_stack: i64,
}

impl Encoder {
    /// `genCode:` answers the 1-based index of the byte it added.
    fn gen_code(&mut self, byte: u32) -> usize {
        self.code.push(byte);
        self.code.len()
    }

    fn gen(&mut self, high: u32, low: u32) {
        if low >= 16 {
            self.gen(0, high);
            self.gen_code(low);
        } else {
            self.gen_code(high * 16 + low);
        }
    }

    fn gen_literal(&mut self, value: Literal) -> u32 {
        self.literals.push(value);
        (self.literals.len() - 1) as u32
    }

    fn current_location(&self) -> u32 {
        self.code.len() as u32
    }

    /// Points the branch byte at 1-based `loc` to the next instruction.
    fn patch(&mut self, loc: usize) {
        self.code[loc - 1] = self.current_location();
    }

    fn back_up(&mut self) {
        self.code.pop();
    }

    fn push_args(&mut self, n: usize) {
        self.stack_size += n as i64;
        self.max_stack = self.max_stack.max(self.stack_size);
    }

    fn pop_args(&mut self, n: usize) {
        self.stack_size -= n as i64;
    }

    fn compile(&mut self, node: &Node, in_block: bool) {
        match node {
            Node::Argument(p) => self.gen(2, p.saturating_sub(1) as u32),
            Node::Temporary(p) => self.gen(3, *p as u32 - 1),
            Node::Instance(p) => self.gen(1, *p as u32 - 1),
            Node::ClassVariable(p) => self.gen(14, *p as u32 - 1),
            Node::Literal(v) => match v {
                Literal::Nil => self.gen(5, 10),
                Literal::True => self.gen(5, 11),
                Literal::False => self.gen(5, 12),
                Literal::Int(i @ 0..=9) => self.gen(5, *i as u32),
                _ => {
                    let k = self.gen_literal(v.clone());
                    self.gen(4, k)
                }
            },
            Node::Assign { target, expression } => {
                self.compile(expression, in_block);
                match **target {
                    Node::Instance(p) => self.gen(6, p as u32 - 1),
                    Node::Temporary(p) => self.gen(7, p as u32 - 1),
                    _ => unreachable!("the parser only builds assignments to assignable nodes"),
                }
            }
            Node::Return(expression) => {
                self.compile(expression, in_block);
                self.gen(15, if in_block { 3 } else { 2 });
            }
            Node::Block { statements, temporary_location } => {
                self.gen(12, *temporary_location as u32);
                let patch = self.gen_code(0);
                self.compile_in_line(statements, true);
                self.gen(15, 2);
                self.patch(patch);
            }
            Node::Primitive { number, arguments } => {
                for a in arguments {
                    self.compile(a, in_block);
                }
                self.gen(13, arguments.len() as u32);
                // Checked by `encode`: anything but a byte-sized SmallInt is declined.
                let n = match number {
                    Literal::Int(n @ 0..=255) => *n as u32,
                    _ => u32::MAX,
                };
                self.gen_code(n);
            }
            Node::Message { receiver, name, arguments } => self.compile_message(receiver, name, arguments, in_block),
        }
    }

    /// `BlockNode>>compileInLine:block:`: statements separated by pops, the last pop removed.
    fn compile_in_line(&mut self, statements: &[Node], in_block: bool) {
        for s in statements {
            self.compile(s, in_block);
            self.gen(15, 5);
        }
        self.back_up();
    }

    fn block_statements(node: &Node) -> &[Node] {
        match node {
            Node::Block { statements, .. } => statements,
            _ => unreachable!("inlined only when every argument is a literal block"),
        }
    }

    fn compile_message(&mut self, receiver: &Node, name: &[u8], arguments: &[Node], in_block: bool) {
        let arguments_are_block = arguments.iter().all(Node::is_block);
        if receiver.is_block() && arguments_are_block && (name == b"whileTrue:" || name == b"whileFalse:") {
            return self.optimize_while(receiver, name, arguments, in_block);
        }
        self.compile(receiver, in_block);
        if receiver.is_super() {
            self.evaluate_arguments(arguments, in_block);
            self.gen(8, 1 + arguments.len() as u32);
            self.gen(15, 11);
            let k = self.gen_literal(Literal::Str(name.to_vec()));
            self.gen_code(k);
            return;
        }
        match name {
            b"isNil" => return self.gen(10, 0),
            b"notNil" => return self.gen(10, 1),
            _ => {}
        }
        if arguments_are_block {
            match name {
                b"ifTrue:" => return self.compile_test(8, 10, arguments, in_block),
                b"ifFalse:" => return self.compile_test(7, 10, arguments, in_block),
                b"and:" => return self.compile_test(8, 12, arguments, in_block),
                b"or:" => return self.compile_test(7, 11, arguments, in_block),
                b"ifTrue:ifFalse:" => return self.optimize_if(arguments, in_block),
                _ => {}
            }
        }
        self.evaluate_arguments(arguments, in_block);
        match name {
            b"<" => return self.gen(11, 0),
            b"<=" => return self.gen(11, 1),
            b"+" => return self.gen(11, 2),
            _ => {}
        }
        self.pop_args(arguments.len());
        self.gen(8, 1 + arguments.len() as u32);
        let k = self.gen_literal(Literal::Str(name.to_vec()));
        self.gen(9, k);
    }

    fn evaluate_arguments(&mut self, arguments: &[Node], in_block: bool) {
        self.push_args(1 + arguments.len());
        for a in arguments {
            self.compile(a, in_block);
        }
    }

    /// `compile:test:constant:block:` (ifTrue:, ifFalse:, and:, or:).
    fn compile_test(&mut self, test: u32, constant: u32, arguments: &[Node], in_block: bool) {
        self.gen(15, test);
        let save = self.gen_code(0);
        self.compile_in_line(Self::block_statements(&arguments[0]), in_block);
        self.gen(15, 6);
        let ssave = self.gen_code(0);
        self.patch(save);
        self.gen(5, constant);
        self.patch(ssave);
    }

    fn optimize_if(&mut self, arguments: &[Node], in_block: bool) {
        self.gen(15, 8);
        let save = self.gen_code(0);
        self.compile_in_line(Self::block_statements(&arguments[0]), in_block);
        self.gen(15, 6);
        let ssave = self.gen_code(0);
        self.patch(save);
        self.compile_in_line(Self::block_statements(&arguments[1]), in_block);
        self.patch(ssave);
    }

    fn optimize_while(&mut self, receiver: &Node, name: &[u8], arguments: &[Node], in_block: bool) {
        let start = self.current_location();
        self.compile_in_line(Self::block_statements(receiver), in_block);
        self.gen(15, if name == b"whileTrue:" { 8 } else { 7 });
        let save = self.gen_code(0);
        self.compile_in_line(Self::block_statements(&arguments[0]), in_block);
        self.gen(15, 5);
        self.gen(15, 6);
        self.gen_code(start);
        self.patch(save);
        self.gen(5, 10);
    }
}

/// Encodes a parsed method as `Parser>>parse:` and `Encoder>>method:class:text:` do.
pub(crate) fn encode(parsed: ParsedMethod) -> Result<CompiledMethod, Decline> {
    let mut e = Encoder { code: Vec::new(), literals: Vec::new(), stack_size: 0, max_stack: 1 };
    // BodyNode>>compile:block:
    for s in &parsed.body {
        e.compile(s, false);
        e.gen(15, 5);
    }
    e.gen(15, 1);
    let bytecodes = e
        .code
        .iter()
        .map(|&b| u8::try_from(b))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| Decline::Quirk("a bytecode operand or branch target beyond 255"))?;
    Ok(CompiledMethod {
        name: parsed.name,
        bytecodes,
        literals: e.literals,
        stack_size: (e.max_stack + 5) as i32,
        temp_size: parsed.max_temps as i32,
    })
}
