//! The checker/compiler: syntax tree → [`Program`], once per equation.
//!
//! It checks what the parser cannot: variable forms and pseudo-constants against the
//! equation's level (the tables of `docs/language.md`), and `@name` output operands. It
//! resolves every channel and constant to a slot of the caller's [`Symbols`], so
//! evaluation never looks a name up, and records what the equation reads and writes for
//! the engine's ordering.
//!
//! The program is a flat postfix instruction list for the stack machine in
//! [`super::eval`]; `IF` becomes a conditional jump, so only the chosen branch runs.

use std::sync::Arc;

use super::ast::{Expr, ExprKind};
use super::context::{ConstSlot, Level, Pseudo, Slot, Symbols, VarForm};
use super::error::{EquationError, EquationKey, ErrorKind};
use super::function::{Function, Operand};
use super::parse::parse;
use super::table::FunctionTable;
use super::value::{Reason, Value};

/// One instruction of a compiled program.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Push a literal (numbers, strings, `#NULL`, the name of an `@name` operand).
    Push(Value),
    /// Push a variable; `missing` (e.g. `$$tmp`) names it when the context has no value.
    Var {
        form: VarForm,
        slot: Slot,
        missing: Arc<str>,
    },
    /// Push a constant; `missing` is `#NAME`.
    Const { slot: ConstSlot, missing: Arc<str> },
    /// Push a pseudo-constant; `missing` is `#NAME`.
    Pseudo { p: Pseudo, missing: Arc<str> },
    /// Pop `argc` operands, push the function's result.
    Call {
        func: &'static Function,
        argc: usize,
    },
    /// A two-number function with a native fast path for two [`Value::Num`] operands;
    /// any other operands go to the function itself, exactly like [`Op::Call`].
    Num2 { func: &'static Function, op: Num2 },
    /// `IF`: pop the condition; true → go on; false → jump to `otherwise`; empty or not a
    /// number → push the empty result and jump to `end`.
    Branch { otherwise: usize, end: usize },
    /// Continue at an instruction.
    Jump(usize),
}

/// The functions whose result for two numbers the evaluator computes inline (the hot
/// path of data-level equations). Each must give exactly what the library's function
/// gives for two numbers; a property test compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Num2 {
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Gt,
    Get,
    Lt,
    Let,
}

impl Num2 {
    /// The fast path of the function with canonical name `name`, if it has one.
    pub(crate) fn of(name: &str) -> Option<Num2> {
        Some(match name {
            "ADD" => Num2::Add,
            "SUB" => Num2::Sub,
            "MUL" => Num2::Mul,
            "DIV" => Num2::Div,
            "EQ" => Num2::Eq,
            "GT" => Num2::Gt,
            "GET" => Num2::Get,
            "LT" => Num2::Lt,
            "LET" => Num2::Let,
            _ => return None,
        })
    }

    /// The result for two numbers.
    #[inline]
    pub(crate) fn apply(self, a: f64, b: f64) -> Value {
        let flag = |c: bool| Value::Num(if c { 1.0 } else { 0.0 });
        match self {
            Num2::Add => Value::num(a + b),
            Num2::Sub => Value::num(a - b),
            Num2::Mul => Value::num(a * b),
            Num2::Div if b == 0.0 => Value::Empty(Reason::DivisionByZero),
            Num2::Div => Value::num(a / b),
            Num2::Eq => flag(a == b),
            Num2::Gt => flag(a > b),
            Num2::Get => flag(a >= b),
            Num2::Lt => flag(a < b),
            Num2::Let => flag(a <= b),
        }
    }
}

/// A variable an equation reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// How it is read (`$x`, `$$X`, …); its meaning depends on the level.
    pub form: VarForm,
    /// The channel's slot.
    pub slot: Slot,
    /// The channel's name as written in the equation.
    pub name: Arc<str>,
}

/// A compiled equation body, ready to be evaluated any number of times.
#[derive(Debug, Clone)]
pub struct Program {
    pub(crate) ops: Vec<Op>,
    /// The deepest the value stack gets.
    pub(crate) max_stack: usize,
    /// Whether every instruction has a purely numeric meaning (number literals, reads,
    /// [`Op::Num2`], `IF`), so the evaluator may first try it on plain `f64`s.
    pub(crate) numeric: bool,
    level: Level,
    reads: Vec<Read>,
    outputs: Vec<(Slot, Arc<str>)>,
    constants: Vec<ConstSlot>,
    pseudos: Vec<Pseudo>,
    source: String,
    /// Whether it calls a function that draws random numbers (`RND`, `RNDN`).
    random: bool,
}

impl Program {
    /// Parses and checks `src` for `level`, interning its names into `symbols`.
    ///
    /// # Errors
    /// An [`EquationError`] (without key) with the column of the first problem.
    pub fn compile(
        src: &str,
        level: Level,
        symbols: &mut Symbols,
        table: &FunctionTable,
    ) -> Result<Program, EquationError> {
        let expr = parse(src, table)?;
        Program::from_expr(&expr, src, level, symbols)
    }

    /// Checks an already parsed tree; `src` is its source (for error columns).
    ///
    /// # Errors
    /// As [`Program::compile`], for the checks that follow parsing.
    pub fn from_expr(
        expr: &Expr,
        src: &str,
        level: Level,
        symbols: &mut Symbols,
    ) -> Result<Program, EquationError> {
        let mut c = Compiler {
            src,
            level,
            symbols,
            prog: Program {
                ops: Vec::new(),
                max_stack: 0,
                numeric: false,
                level,
                reads: Vec::new(),
                outputs: Vec::new(),
                constants: Vec::new(),
                pseudos: Vec::new(),
                source: src.to_string(),
                random: false,
            },
            depth: 0,
        };
        c.expr(expr)?;
        let mut prog = c.prog;
        prog.numeric = prog.max_stack <= NUMERIC_STACK
            && prog.ops.iter().all(|op| match op {
                Op::Push(v) => matches!(v, Value::Num(_)),
                Op::Var { .. } | Op::Const { .. } | Op::Pseudo { .. } => true,
                Op::Num2 { .. } | Op::Branch { .. } | Op::Jump(_) => true,
                Op::Call { .. } => false,
            });
        prog.random = prog
            .ops
            .iter()
            .any(|op| matches!(op, Op::Call { func, .. } if RANDOM_FUNCTIONS.contains(&func.name)));
        Ok(prog)
    }

    /// The level the program was checked for.
    pub fn level(&self) -> Level {
        self.level
    }

    /// Every variable the program reads, once each, in order of first appearance.
    pub fn reads(&self) -> &[Read] {
        &self.reads
    }

    /// The `@name` output channels the program writes (besides the equation's own
    /// result), with their slots.
    pub fn outputs(&self) -> &[(Slot, Arc<str>)] {
        &self.outputs
    }

    /// The constants the program reads.
    pub fn constants(&self) -> &[ConstSlot] {
        &self.constants
    }

    /// The pseudo-constants the program reads (`#MT` and `$$` pull in neighbours).
    pub fn pseudos(&self) -> &[Pseudo] {
        &self.pseudos
    }

    /// The source the program was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the program draws random numbers, i.e. whether the seed passed to
    /// [`super::Machine::eval`] matters (the engine skips computing it otherwise).
    pub fn uses_random(&self) -> bool {
        self.random
    }
}

/// The functions that use the call context's random number generator.
const RANDOM_FUNCTIONS: [&str; 2] = ["RND", "RNDN"];

/// A stored equation, compiled: its key, level, output slot and program.
#[derive(Debug, Clone)]
pub struct Equation {
    /// The equation's key.
    pub key: EquationKey,
    /// The level its type selects.
    pub level: Level,
    /// The slot of the channel it writes (its `name`).
    pub output: Slot,
    /// The compiled body.
    pub program: Program,
}

impl Equation {
    /// Compiles a stored equation with the language's functions.
    ///
    /// # Errors
    /// An [`EquationError`] carrying `key`: an unknown type, or any parse/check problem.
    pub fn compile(
        key: EquationKey,
        src: &str,
        symbols: &mut Symbols,
    ) -> Result<Equation, EquationError> {
        Equation::compile_with(key, src, symbols, FunctionTable::standard())
    }

    /// [`Equation::compile`] against another function table.
    ///
    /// # Errors
    /// As [`Equation::compile`].
    pub fn compile_with(
        key: EquationKey,
        src: &str,
        symbols: &mut Symbols,
        table: &FunctionTable,
    ) -> Result<Equation, EquationError> {
        let Some(level) = Level::from_type(key.ty) else {
            let kind = ErrorKind::UnknownType(key.ty);
            return Err(EquationError::at(src, 0, kind).with_key(key));
        };
        match Program::compile(src, level, symbols, table) {
            Ok(program) => Ok(Equation {
                output: symbols.channel(&key.name),
                key,
                level,
                program,
            }),
            Err(e) => Err(e.with_key(key)),
        }
    }

    /// Every variable the equation reads.
    pub fn reads(&self) -> &[Read] {
        self.program.reads()
    }

    /// Every channel the equation writes at its level: its own `name` first, then its
    /// `@name` outputs.
    pub fn writes(&self) -> impl Iterator<Item = Slot> + '_ {
        std::iter::once(self.output).chain(self.program.outputs().iter().map(|(s, _)| *s))
    }
}

struct Compiler<'a> {
    src: &'a str,
    level: Level,
    symbols: &'a mut Symbols,
    prog: Program,
    /// The current value-stack depth while emitting.
    depth: usize,
}

/// The deepest stack the evaluator's numeric path handles (in `f64`s on the CPU stack).
pub(crate) const NUMERIC_STACK: usize = 16;

/// A limit on instructions, far above any real equation, so jump targets stay small.
const MAX_OPS: usize = 1 << 20;

impl Compiler<'_> {
    fn err(&self, at: usize, kind: ErrorKind) -> EquationError {
        EquationError::at(self.src, at, kind)
    }

    fn emit(&mut self, op: Op, at: usize) -> Result<usize, EquationError> {
        match &op {
            Op::Call { argc, .. } => self.depth = (self.depth + 1).saturating_sub(*argc),
            Op::Num2 { .. } | Op::Branch { .. } => self.depth = self.depth.saturating_sub(1),
            Op::Jump(_) => {}
            _ => self.depth += 1,
        }
        self.prog.max_stack = self.prog.max_stack.max(self.depth);
        if self.prog.ops.len() >= MAX_OPS {
            return Err(self.err(at, ErrorKind::TooLong));
        }
        self.prog.ops.push(op);
        Ok(self.prog.ops.len() - 1)
    }

    fn expr(&mut self, e: &Expr) -> Result<(), EquationError> {
        let at = e.span.start;
        let op = match &e.kind {
            ExprKind::Num(n) => Op::Push(Value::Num(*n)),
            ExprKind::Str(s) => Op::Push(Value::Str(s.as_str().into())),
            ExprKind::Var(form, name) => {
                if !self.level.allows(*form) {
                    return Err(self.err(
                        at,
                        ErrorKind::FormNotAtLevel {
                            form: form.describe(),
                            written: format!("{}{name}", form.prefix()),
                            level: self.level.name(),
                        },
                    ));
                }
                let slot = self.symbols.channel(name);
                let missing: Arc<str> = format!("{}{name}", form.prefix()).into();
                if !self
                    .prog
                    .reads
                    .iter()
                    .any(|r| r.form == *form && r.slot == slot)
                {
                    self.prog.reads.push(Read {
                        form: *form,
                        slot,
                        name: name.as_str().into(),
                    });
                }
                Op::Var {
                    form: *form,
                    slot,
                    missing,
                }
            }
            ExprKind::Pseudo(Pseudo::Null) => {
                Op::Push(Value::Empty(Reason::Missing(Arc::from("#NULL"))))
            }
            ExprKind::Pseudo(p) => {
                if !p.allowed_at(self.level) {
                    return Err(self.err(
                        at,
                        ErrorKind::PseudoNotAtLevel {
                            name: p.name(),
                            level: self.level.name(),
                        },
                    ));
                }
                if !self.prog.pseudos.contains(p) {
                    self.prog.pseudos.push(*p);
                }
                Op::Pseudo {
                    p: *p,
                    missing: format!("#{}", p.name()).into(),
                }
            }
            ExprKind::Const(name) => {
                let slot = self.symbols.constant(name);
                if !self.prog.constants.contains(&slot) {
                    self.prog.constants.push(slot);
                }
                Op::Const {
                    slot,
                    missing: format!("#{name}").into(),
                }
            }
            ExprKind::Output(name) => {
                return Err(self.err(at, ErrorKind::OutputNotAllowed(name.clone())))
            }
            ExprKind::Call(f, args) => return self.call(f.0, args, at),
        };
        self.emit(op, at)?;
        Ok(())
    }

    fn call(
        &mut self,
        func: &'static Function,
        args: &[Expr],
        at: usize,
    ) -> Result<(), EquationError> {
        if args.len() != func.operands.len() {
            // Only a tree built in code can get here; the parser reads exactly the arity.
            return Err(self.err(
                at,
                ErrorKind::MissingOperand {
                    function: func.name.to_string(),
                    expected: func.operands.len(),
                    found: format!("found {}", args.len()),
                },
            ));
        }
        if func.name == "IF" && args.len() == 3 {
            return self.lazy_if(args, at);
        }
        for (i, (arg, kind)) in args.iter().zip(func.operands).enumerate() {
            if *kind == Operand::Output {
                let ExprKind::Output(name) = &arg.kind else {
                    return Err(self.err(
                        arg.span.start,
                        ErrorKind::OutputExpected {
                            function: func.name,
                            position: i + 1,
                        },
                    ));
                };
                let slot = self.symbols.channel(name);
                if !self.prog.outputs.iter().any(|(s, _)| *s == slot) {
                    self.prog.outputs.push((slot, name.as_str().into()));
                }
                self.emit(Op::Push(Value::Str(name.as_str().into())), arg.span.start)?;
            } else {
                self.expr(arg)?;
            }
        }
        let op = match Num2::of(func.name) {
            Some(op) if args.len() == 2 && func.operands == [Operand::N, Operand::N] => {
                Op::Num2 { func, op }
            }
            _ => Op::Call {
                func,
                argc: args.len(),
            },
        };
        self.emit(op, at)?;
        Ok(())
    }

    /// `IF a b c` → `a; Branch; b; Jump end; c; end:`.
    fn lazy_if(&mut self, args: &[Expr], at: usize) -> Result<(), EquationError> {
        self.expr(&args[0])?;
        let branch = self.emit(
            Op::Branch {
                otherwise: 0,
                end: 0,
            },
            at,
        )?;
        let before = self.depth;
        self.expr(&args[1])?;
        let jump = self.emit(Op::Jump(0), at)?;
        self.depth = before;
        let otherwise = self.prog.ops.len();
        self.expr(&args[2])?;
        let end = self.prog.ops.len();
        self.prog.ops[branch] = Op::Branch { otherwise, end };
        self.prog.ops[jump] = Op::Jump(end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_functions::table;

    fn compile(src: &str, level: Level) -> Result<Program, String> {
        let mut s = Symbols::new();
        Program::compile(src, level, &mut s, table()).map_err(|e| e.to_string())
    }

    fn key(ty: i32) -> EquationKey {
        EquationKey {
            ty,
            id: 17,
            name: "tavg".into(),
        }
    }

    #[test]
    fn errors_carry_the_key_and_column() {
        let mut s = Symbols::new();
        let e = Equation::compile_with(key(4), "SNRM ", &mut s, table()).map(|_| ());
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("equation (type 4, id 17, 'tavg') column 6: SNRM expects 1 operand, the equation ends".into())
        );
        let e = Equation::compile_with(key(3), "1", &mut s, table()).map(|_| ());
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("equation (type 3, id 17, 'tavg') column 1: type 3 is not a level (1, 2: data; 4: job; 5: day; 6, 7: summary)".into())
        );
    }

    #[test]
    fn variable_forms_follow_the_level_table() {
        assert!(compile("+ $a $$a", Level::Data).is_ok());
        assert!(compile("+ $A $$A", Level::Data).is_ok());
        assert_eq!(
            compile("+ 1 $d$x", Level::Data).err().as_deref(),
            Some("column 5: $d$x variables ('$d$x') cannot be used at the data level")
        );
        assert!(compile("SNRM $d$x", Level::Day).is_ok());
        assert!(compile("SNRM $d$x", Level::Job).is_err());
        assert!(compile("SNRM $j$x", Level::Summary).is_ok());
        assert!(compile("SNRM $j$x", Level::Day).is_err());
        assert_eq!(
            compile("ABS $$X", Level::Summary).err().as_deref(),
            Some("column 5: $$X variables ('$$X') cannot be used at the summary level")
        );
        assert!(compile("ABS $$x", Level::Summary).is_ok());
    }

    #[test]
    fn pseudo_constants_follow_the_level_table() {
        assert!(compile("+ #REC #MT", Level::Data).is_ok());
        assert_eq!(
            compile("+ 1 #REC", Level::Job).err().as_deref(),
            Some("column 5: the pseudo-constant #REC does not exist at the job level")
        );
        assert!(compile("SNRM #VMT", Level::Data).is_err());
        assert!(compile("ABS #JT", Level::Day).is_err());
        assert!(compile("ABS #JT", Level::Summary).is_ok());
        assert!(compile("IFNA #NULL 1", Level::Summary).is_ok());
    }

    #[test]
    fn output_operands() {
        let p = compile("SDATCTRL 1 @flags $x 3", Level::Job);
        assert!(p.is_ok());
        assert_eq!(
            compile("SDATCTRL 1 $f $x 3", Level::Job).err().as_deref(),
            Some("column 12: operand 2 of SDATCTRL must be an output channel '@name'")
        );
        assert_eq!(
            compile("+ 1 @f", Level::Job).err().as_deref(),
            Some("column 5: '@f' can only be an output operand (such as SDATCTRL's second)")
        );
    }

    #[test]
    fn reads_and_writes_are_reported_with_slots() {
        let mut s = Symbols::new();
        let eq = Equation::compile_with(
            key(4),
            "+ SDATCTRL 1 @Flags $tmp 3 + $TMP + $tmp #TMAX",
            &mut s,
            table(),
        );
        let Ok(eq) = eq else { panic!("{eq:?}") };
        let reads: Vec<(VarForm, &str)> = eq.reads().iter().map(|r| (r.form, &*r.name)).collect();
        assert_eq!(reads, vec![(VarForm::Cur, "tmp"), (VarForm::Up, "TMP")]);
        assert_eq!(eq.reads()[0].slot, eq.reads()[1].slot);
        let writes: Vec<Slot> = eq.writes().collect();
        assert_eq!(writes, vec![s.channel("tavg"), s.channel("flags")]);
        assert_eq!(eq.program.constants(), &[s.constant("tmax")]);
        assert_eq!(eq.program.level(), Level::Job);
    }

    #[test]
    fn trees_built_in_code_are_checked_for_arity() {
        let Some(abs) = table().get("ABS") else {
            panic!()
        };
        let bad = Expr::new(ExprKind::Call(crate::lang::ast::FnRef(abs), vec![]));
        let r = Program::from_expr(&bad, "", Level::Data, &mut Symbols::new());
        assert_eq!(
            r.map(|_| ()).map_err(|e| e.to_string()),
            Err("column 1: ABS expects 1 operand, found 0".into())
        );
    }

    #[test]
    fn numeric_programs_are_recognised() {
        let numeric = |src| compile(src, Level::Data).map(|p| p.numeric);
        assert_eq!(numeric("+ * $a 2 $b"), Ok(true));
        assert_eq!(numeric("IF > $tmp #TMAX 1 0"), Ok(true));
        assert_eq!(numeric("IF > $tmp #TMAX 1 'x'"), Ok(false));
        assert_eq!(numeric("ABS $a"), Ok(false));
        // Left-nested sums need two stack places, right-nested ones one per level.
        let left = "+ ".repeat(20) + &" 1".repeat(21);
        assert_eq!(numeric(&left), Ok(true));
        let right = "+ 1 ".repeat(20) + "1";
        assert_eq!(numeric(&right), Ok(false));
    }

    #[test]
    fn random_functions_are_noticed() {
        let mut s = Symbols::new();
        let t = FunctionTable::standard();
        let random = |src: &str, s: &mut Symbols| {
            Program::compile(src, Level::Data, s, t).map(|p| p.uses_random())
        };
        assert_eq!(random("+ 1 rnd", &mut s).ok(), Some(true));
        assert_eq!(random("IF 0 1 RNDN 2", &mut s).ok(), Some(true));
        assert_eq!(random("ADDS 'RND' $x", &mut s).ok(), Some(false));
    }

    #[test]
    fn stack_depth_is_computed() {
        let Ok(p) = compile("+ 1 + 2 + 3 4", Level::Data) else {
            panic!()
        };
        assert_eq!(p.max_stack, 4);
        let Ok(p) = compile("IF 1 + 1 2 3", Level::Data) else {
            panic!()
        };
        assert_eq!(p.max_stack, 2);
    }
}
