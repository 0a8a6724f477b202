//! The import allow-list, checked before anything of a component runs.
//!
//! Invariants: a component whose imports are not all on the list is never instantiated; an
//! allowed interface is accepted only in its expected shape (for `graphjit:guest/types`: types
//! only, no functions), so a name alone cannot smuggle a function in. WASI is not on the list.

use super::error::RuntimeError;

/// The types interface every graph world imports (it holds `run-error`; no functions).
pub(crate) const TYPES_INTERFACE: &str = "graphjit:guest/types@0.1.0";

/// Refuses the first import that is not allowed, naming it.
pub(crate) fn check(
    component: &wasmtime::component::Component,
    engine: &wasmtime::Engine,
) -> Result<(), RuntimeError> {
    use wasmtime::component::types::ComponentItem;
    let component_type = component.component_type();
    for (name, import) in component_type.imports(engine) {
        let denied = || RuntimeError::ImportDenied {
            import: name.to_owned(),
        };
        if name != TYPES_INTERFACE {
            return Err(denied());
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            return Err(denied());
        };
        if !instance
            .exports(engine)
            .all(|(_, item)| matches!(item.ty, ComponentItem::Type(_)))
        {
            return Err(denied());
        }
    }
    Ok(())
}
