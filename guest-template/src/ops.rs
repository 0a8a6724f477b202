//! Operations the generated code calls (owned by codegen).
