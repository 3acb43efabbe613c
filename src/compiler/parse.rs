//! The image's `Parser`, ported method by method: the lexer (`nextLex`, `lexAlphabetic`,
//! `lexInteger`, `lexBinary`, comments and blanks) and the recursive-descent parser that builds
//! the parse tree of `ParserNode` subclasses, with names resolved while parsing as `nameNode:`
//! does. Quirks are kept on purpose (SMALLWORLD-VM.md §8): `;` is a binary selector, a method's
//! text after its last statement is ignored, block temporaries are blanked but never reused.
//!
//! Wherever the image's parser would call `error:`, or would compute a value this port does not
//! reproduce bit for bit (a LargePositive literal), parsing stops with a `Decline`: the method is
//! then left to the image's own compiler, which reports the error in its own words.

use super::{Decline, Literal};
use crate::heap::Value;

/// A node of the parse tree; one variant per `ParserNode` subclass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// `ArgumentNode`; position 0 is `super`, 1 is `self`.
    Argument(usize),
    Temporary(usize),
    Instance(usize),
    ClassVariable(usize),
    Literal(Literal),
    Assign {
        target: Box<Node>,
        expression: Box<Node>,
    },
    Message {
        receiver: Box<Node>,
        name: Vec<u8>,
        arguments: Vec<Node>,
    },
    Block {
        statements: Vec<Node>,
        temporary_location: usize,
    },
    Primitive {
        number: Literal,
        arguments: Vec<Node>,
    },
    Return(Box<Node>),
}

impl Node {
    pub(crate) fn is_block(&self) -> bool {
        matches!(self, Node::Block { .. })
    }

    pub(crate) fn is_super(&self) -> bool {
        matches!(self, Node::Argument(0))
    }

    fn assignable(&self) -> bool {
        matches!(self, Node::Instance(_) | Node::Temporary(_))
    }
}

/// What `Parser>>parse:` reads: the method's name, its body and its temporary count.
#[derive(Debug)]
pub(crate) struct ParsedMethod {
    pub name: Vec<u8>,
    pub body: Vec<Node>,
    pub max_temps: usize,
}

/// Nesting beyond which the port declines (the image's parser has no limit; Rust's stack has).
const MAX_DEPTH: usize = 400;
/// Unary and binary messages in one method. Each link of a chain (`1 + 1 + … + 1`,
/// `x size printString size …`) is a level of the parse tree, which encoding and dropping walk
/// recursively: a chain of 70 000 overflowed the native stack. Together with `MAX_DEPTH` this
/// bounds the tree's height; a method beyond it goes to the image's compiler, whose recursion
/// is on the heap.
const MAX_LINKS: usize = 4000;

fn is_blank(c: u8) -> bool {
    c == 32 || c == 9 || c == 10
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}

fn is_alphabetic(c: u8) -> bool {
    c.is_ascii_alphabetic()
}

fn is_alphanumeric(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// `Parser>>charIsSyntax:`.
fn is_syntax(c: u8) -> bool {
    b".()[]#^$'".contains(&c)
}

pub(crate) struct Parser<'a> {
    text: &'a [u8],
    /// 1-based, as in the image.
    index: usize,
    token: Option<Vec<u8>>,
    /// The first character of the token (a blank at the end of the text).
    token_type: u8,
    arg_names: Vec<Vec<u8>>,
    inst_names: &'a [Vec<u8>],
    temp_names: Vec<Vec<u8>>,
    class_var_names: &'a [Vec<u8>],
    max_temps: usize,
    globals: &'a mut dyn FnMut(&[u8]) -> Option<Value>,
    depth: usize,
    /// Unary and binary messages so far (`MAX_LINKS`).
    links: usize,
}

type Parse<T> = Result<T, Decline>;

impl<'a> Parser<'a> {
    /// `Parser>>text:instanceVars:classVars:`.
    pub(crate) fn new(
        text: &'a [u8],
        inst_names: &'a [Vec<u8>],
        class_var_names: &'a [Vec<u8>],
        globals: &'a mut dyn FnMut(&[u8]) -> Option<Value>,
    ) -> Parser<'a> {
        Parser {
            text,
            index: 1,
            token: None,
            token_type: b' ',
            arg_names: vec![b"self".to_vec()],
            inst_names,
            temp_names: Vec::new(),
            class_var_names,
            max_temps: 0,
            globals,
            depth: 0,
            links: 0,
        }
    }

    /// `Parser>>parse:` up to the encoder: the method name, variables and body.
    pub(crate) fn parse_method(mut self) -> Parse<ParsedMethod> {
        self.next_lex()?;
        let name = self.read_method_name()?;
        self.read_method_variables()?;
        let body = self.read_statement_list()?;
        Ok(ParsedMethod { name, body, max_temps: self.max_temps })
    }

    // ---- characters ----

    fn current_char(&self) -> Option<u8> {
        self.text.get(self.index.wrapping_sub(1)).copied()
    }

    fn next_char(&mut self) -> u8 {
        self.index += 1;
        self.current_char().unwrap_or(b' ')
    }

    /// `text from: start to: stop` (1-based, inclusive).
    fn substring(&self, start: usize, stop: usize) -> Parse<Vec<u8>> {
        if stop + 1 < start || start == 0 || stop > self.text.len() {
            return Err(Decline::Quirk("substring outside the text"));
        }
        Ok(self.text[start - 1..stop].to_vec())
    }

    // ---- lexer ----

    fn skip_blanks(&mut self) -> Parse<()> {
        loop {
            while self.current_char().is_some_and(is_blank) {
                self.index += 1;
            }
            if self.current_char() != Some(b'"') {
                return Ok(());
            }
            // skipComment
            loop {
                self.index += 1;
                match self.current_char() {
                    None => return Err(Decline::Error("unterminated comment")),
                    Some(b'"') => break,
                    Some(_) => {}
                }
            }
            self.next_char();
        }
    }

    fn next_lex(&mut self) -> Parse<()> {
        self.skip_blanks()?;
        let Some(c) = self.current_char() else {
            self.token_type = b' ';
            self.token = None;
            return Ok(());
        };
        self.token_type = c;
        if is_digit(c) {
            self.lex_integer()
        } else if is_alphabetic(c) {
            self.lex_alphabetic()
        } else {
            self.lex_binary();
            Ok(())
        }
    }

    fn lex_alphabetic(&mut self) -> Parse<()> {
        let start = self.index;
        let mut cc = self.next_char();
        while is_alphanumeric(cc) {
            cc = self.next_char();
        }
        if cc == b':' {
            self.next_char();
        }
        self.token = Some(self.substring(start, self.index - 1)?);
        Ok(())
    }

    fn lex_integer(&mut self) -> Parse<()> {
        let start = self.index;
        while is_digit(self.next_char()) {}
        let after_dot = self.text.get(self.index).copied().unwrap_or(b' ');
        if self.current_char() == Some(b'.') && is_digit(after_dot) {
            while is_digit(self.next_char()) {}
        }
        self.token = Some(self.substring(start, self.index - 1)?);
        Ok(())
    }

    fn lex_binary(&mut self) {
        let c = self.current_char().unwrap_or(b' ');
        let mut token = vec![c];
        let d = self.next_char();
        if !(is_syntax(c) || is_blank(d) || is_digit(d) || is_alphabetic(d) || is_syntax(d)) {
            token.push(d);
            self.next_char();
        }
        self.token = Some(token);
    }

    // ---- token tests ----

    fn token_last(&self) -> Option<u8> {
        self.token.as_ref().and_then(|t| t.last().copied())
    }

    fn token_is_name(&self) -> bool {
        is_alphabetic(self.token_type) && self.token_last().is_some_and(is_alphanumeric)
    }

    fn token_is_keyword(&self) -> bool {
        is_alphabetic(self.token_type) && self.token_last() == Some(b':')
    }

    fn token_is_binary(&self) -> bool {
        !(self.token.is_none() || self.token_is_name() || self.token_is_keyword() || is_syntax(self.token_type))
    }

    fn token_is_arrow(&self) -> bool {
        self.token.as_deref() == Some(b"<-")
    }

    fn take_token(&self) -> Vec<u8> {
        self.token.clone().unwrap_or_default()
    }

    // ---- names ----

    fn add_arg_name(&mut self, name: Vec<u8>) -> Parse<()> {
        if self.inst_names.contains(&name) || self.arg_names.contains(&name) {
            return Err(Decline::Error("doubly defined argument name"));
        }
        self.arg_names.push(name);
        Ok(())
    }

    fn add_temp_name(&mut self, name: Vec<u8>) -> Parse<()> {
        if self.arg_names.contains(&name) || self.inst_names.contains(&name) || self.temp_names.contains(&name) {
            return Err(Decline::Error("doubly defined name"));
        }
        self.temp_names.push(name);
        self.max_temps = self.max_temps.max(self.temp_names.len());
        Ok(())
    }

    fn name_node(&mut self, name: &[u8]) -> Parse<Node> {
        if name == b"super" {
            return Ok(Node::Argument(0));
        }
        let position = |names: &[Vec<u8>]| names.iter().position(|n| n == name).map(|i| i + 1);
        if let Some(i) = position(&self.temp_names) {
            return Ok(Node::Temporary(i));
        }
        if let Some(i) = position(&self.arg_names) {
            return Ok(Node::Argument(i));
        }
        if let Some(i) = position(self.inst_names) {
            return Ok(Node::Instance(i));
        }
        if let Some(i) = position(self.class_var_names) {
            return Ok(Node::ClassVariable(i));
        }
        // findName:
        let value = match name {
            b"true" => Literal::True,
            b"false" => Literal::False,
            b"nil" => Literal::Nil,
            _ => Literal::Global((self.globals)(name).ok_or(Decline::Error("unrecognized name"))?),
        };
        Ok(Node::Literal(value))
    }

    // ---- method header ----

    fn read_method_name(&mut self) -> Parse<Vec<u8>> {
        if self.token_is_name() {
            let name = self.take_token();
            self.next_lex()?;
            return Ok(name);
        }
        if self.token_is_binary() {
            let name = self.take_token();
            self.next_lex()?;
            if !self.token_is_name() {
                return Err(Decline::Error("missing argument"));
            }
            self.add_arg_name(self.take_token())?;
            self.next_lex()?;
            return Ok(name);
        }
        if !self.token_is_keyword() {
            return Err(Decline::Error("invalid method header"));
        }
        let mut name = Vec::new();
        while self.token_is_keyword() {
            name.extend_from_slice(&self.take_token());
            self.next_lex()?;
            if !self.token_is_name() {
                return Err(Decline::Error("missing argument"));
            }
            self.add_arg_name(self.take_token())?;
            self.next_lex()?;
        }
        Ok(name)
    }

    fn read_method_variables(&mut self) -> Parse<()> {
        if self.token_type != b'|' {
            return Ok(());
        }
        self.next_lex()?;
        while self.token_is_name() {
            self.add_temp_name(self.take_token())?;
            self.next_lex()?;
        }
        if self.token_type != b'|' {
            return Err(Decline::Error("illegal method variable declaration"));
        }
        self.next_lex()
    }

    // ---- statements and expressions ----

    fn read_statement_list(&mut self) -> Parse<Vec<Node>> {
        let mut list = Vec::new();
        loop {
            list.push(self.read_statement()?);
            if self.token_type != b'.' {
                return Ok(list);
            }
            self.next_lex()?;
            if self.token.is_none() || self.token_type == b']' {
                return Ok(list);
            }
        }
    }

    fn read_statement(&mut self) -> Parse<Node> {
        if self.token_type == b'^' {
            self.next_lex()?;
            return Ok(Node::Return(Box::new(self.read_expression()?)));
        }
        self.read_expression()
    }

    fn read_expression(&mut self) -> Parse<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Decline::Quirk("nesting too deep for the native compiler"));
        }
        let node = self.read_expression_inner();
        self.depth -= 1;
        node
    }

    fn read_expression_inner(&mut self) -> Parse<Node> {
        if !self.token_is_name() {
            let term = self.read_term()?;
            return self.keyword_continuation(term);
        }
        let name = self.take_token();
        let node = self.name_node(&name)?;
        self.next_lex()?;
        if self.token_is_arrow() {
            if !node.assignable() {
                return Err(Decline::Error("illegal assignment"));
            }
            self.next_lex()?;
            let expression = self.read_expression()?;
            return Ok(Node::Assign { target: Box::new(node), expression: Box::new(expression) });
        }
        self.keyword_continuation(node)
    }

    fn keyword_continuation(&mut self, base: Node) -> Parse<Node> {
        let receiver = self.binary_continuation(base)?;
        if !self.token_is_keyword() {
            return Ok(receiver);
        }
        let mut name = Vec::new();
        let mut arguments = Vec::new();
        while self.token_is_keyword() {
            name.extend_from_slice(&self.take_token());
            self.next_lex()?;
            let term = self.read_term()?;
            arguments.push(self.binary_continuation(term)?);
        }
        Ok(Node::Message { receiver: Box::new(receiver), name, arguments })
    }

    fn binary_continuation(&mut self, base: Node) -> Parse<Node> {
        let mut receiver = self.unary_continuation(base)?;
        while self.token_is_binary() {
            self.count_link()?;
            let name = self.take_token();
            self.next_lex()?;
            let term = self.read_term()?;
            let argument = self.unary_continuation(term)?;
            receiver = Node::Message { receiver: Box::new(receiver), name, arguments: vec![argument] };
        }
        Ok(receiver)
    }

    /// One more unary or binary message (see `MAX_LINKS`).
    fn count_link(&mut self) -> Parse<()> {
        self.links += 1;
        match self.links > MAX_LINKS {
            true => Err(Decline::Quirk("too many messages for the native compiler")),
            false => Ok(()),
        }
    }

    fn unary_continuation(&mut self, base: Node) -> Parse<Node> {
        let mut receiver = base;
        while self.token_is_name() {
            self.count_link()?;
            receiver = Node::Message { receiver: Box::new(receiver), name: self.take_token(), arguments: Vec::new() };
            self.next_lex()?;
        }
        Ok(receiver)
    }

    fn read_term(&mut self) -> Parse<Node> {
        if self.token.is_none() {
            return Err(Decline::Error("unexpected end of input"));
        }
        match self.token_type {
            b'(' => {
                self.next_lex()?;
                let node = self.read_expression()?;
                if self.token_type != b')' {
                    return Err(Decline::Error("unbalanced parenthesis"));
                }
                self.next_lex()?;
                Ok(node)
            }
            b'[' => self.read_block(),
            b'<' => self.read_primitive(),
            b'#' => self.read_array(),
            _ if self.token_is_name() => {
                let name = self.take_token();
                let node = self.name_node(&name)?;
                self.next_lex()?;
                Ok(node)
            }
            _ => Ok(Node::Literal(self.read_literal()?)),
        }
    }

    fn read_block(&mut self) -> Parse<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Decline::Quirk("nesting too deep for the native compiler"));
        }
        let saved = self.temp_names.len();
        self.next_lex()?;
        if self.token_type == b':' {
            self.read_block_temporaries()?;
        }
        let statements = self.read_statement_list()?;
        // The block's names go out of scope, but their slots are never reused.
        for n in &mut self.temp_names[saved..] {
            *n = b" ".to_vec();
        }
        if self.token_type != b']' {
            return Err(Decline::Error("unterminated block"));
        }
        self.next_lex()?;
        self.depth -= 1;
        Ok(Node::Block { statements, temporary_location: saved })
    }

    fn read_block_temporaries(&mut self) -> Parse<()> {
        while self.token_type == b':' {
            if !self.current_char().is_some_and(is_alphabetic) {
                return Err(Decline::Error("ill formed block argument"));
            }
            self.next_lex()?;
            if !self.token_is_name() {
                return Err(Decline::Error("invalid block argument list"));
            }
            self.add_temp_name(self.take_token())?;
            self.next_lex()?;
        }
        if self.token_type != b'|' {
            return Err(Decline::Error("invalid block argument list"));
        }
        self.next_lex()
    }

    fn read_primitive(&mut self) -> Parse<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Decline::Quirk("nesting too deep for the native compiler"));
        }
        self.next_lex()?;
        let number = self.read_integer()?;
        let mut arguments = Vec::new();
        while self.token_type != b'>' {
            arguments.push(self.read_term()?);
        }
        self.next_lex()?;
        self.depth -= 1;
        Ok(Node::Primitive { number, arguments })
    }

    /// `#( … )`: each element is a term, collected at run time by primitive 36.
    fn read_array(&mut self) -> Parse<Node> {
        if self.current_char() != Some(b'(') {
            return Err(Decline::Error("Little Smalltalk does not use symbols"));
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Decline::Quirk("nesting too deep for the native compiler"));
        }
        self.next_char();
        self.next_lex()?;
        let mut arguments = Vec::new();
        while self.token_type != b')' {
            arguments.push(self.read_term()?);
        }
        self.next_lex()?;
        self.depth -= 1;
        Ok(Node::Primitive { number: Literal::Int(36), arguments })
    }

    // ---- literals ----

    fn read_literal(&mut self) -> Parse<Literal> {
        match self.token_type {
            b'$' => {
                let c = self.current_char();
                self.next_char();
                self.next_lex()?;
                // At the end of the text `currentChar` is nil, and so is the literal.
                Ok(c.map_or(Literal::Nil, Literal::Char))
            }
            c if is_digit(c) => self.read_integer(),
            b'-' => {
                self.next_lex()?;
                // `negated` is `0 - self`.
                Ok(match self.read_integer()? {
                    Literal::Int(i) => Literal::Int(-i),
                    Literal::Float(f) => Literal::Float(0.0 - f),
                    _ => return Err(Decline::Quirk("negated literal")),
                })
            }
            b'\'' => self.read_string(),
            _ => Err(Decline::Error("invalid literal")),
        }
    }

    /// Integers are built by SmallInt arithmetic, so a literal beyond 2^31 - 1 (or a decimal with
    /// more than nine fraction digits) becomes a LargePositive: left to the image.
    fn read_integer(&mut self) -> Parse<Literal> {
        if !is_digit(self.token_type) {
            return Err(Decline::Error("integer expected"));
        }
        let large = Decline::Quirk("literal beyond SmallInt");
        let mut value: i32 = 0;
        let mut divisor: Option<i32> = None;
        for &c in self.token.as_deref().unwrap_or(&[]) {
            if is_digit(c) {
                value = value.checked_mul(10).and_then(|v| v.checked_add((c - b'0') as i32)).ok_or(large.clone())?;
                if let Some(d) = divisor {
                    divisor = Some(d.checked_mul(10).ok_or(large.clone())?);
                }
            }
            if c == b'.' {
                divisor = Some(1);
            }
        }
        self.next_lex()?;
        Ok(match divisor {
            // `value asFloat / divisor` reaches primitive 54 with both operands as Floats.
            Some(d) => Literal::Float(value as f64 / d as f64),
            None => Literal::Int(value),
        })
    }

    fn read_string(&mut self) -> Parse<Literal> {
        let mut s = Vec::new();
        loop {
            let first = self.index;
            loop {
                match self.current_char() {
                    None => return Err(Decline::Error("unterminated string constant")),
                    Some(b'\'') => break,
                    Some(_) => self.index += 1,
                }
            }
            let last = self.index - 1;
            if self.next_char() == b'\'' {
                // A doubled quote: keep one and read on.
                self.next_char();
                s.extend_from_slice(&self.substring(first, self.index - 2)?);
                continue;
            }
            self.next_lex()?;
            s.extend_from_slice(&self.substring(first, last)?);
            return Ok(Literal::Str(s));
        }
    }
}
