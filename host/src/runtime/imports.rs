//! The import allow-list, checked before anything of a component runs.
//!
//! Invariants: a component whose imports are not all on the list is never instantiated; an
//! allowed interface is accepted only in its expected shape (for `graphjit:guest/types`: types
//! only, no functions), so a name alone cannot smuggle a function in. WASI is not on the list.

use super::error::RuntimeError;
use super::host_imports;
use crate::interface::Interface;

/// The types interface every graph world imports (it holds `run-error`; no functions).
pub(crate) const TYPES_INTERFACE: &str = "graphjit:guest/types@0.1.0";

/// Refuses the first import that is not allowed, naming it. The types interfaces are always
/// allowed (types only); a host [`Interface`] only when `allowed` says the graph's footprint
/// permits it.
pub(crate) fn check(
    component: &wasmtime::component::Component,
    engine: &wasmtime::Engine,
    allowed: &dyn Fn(Interface) -> bool,
) -> Result<(), RuntimeError> {
    use wasmtime::component::types::ComponentItem;
    let component_type = component.component_type();
    for (name, import) in component_type.imports(engine) {
        let denied = || RuntimeError::ImportDenied {
            import: name.to_owned(),
        };
        if let Some(interface) = Interface::from_wit(name) {
            // `native` and `memo` reach nothing outside the host (see `Interface::allowed_by`):
            // allowed whatever the caller says.
            let always = matches!(interface, Interface::Native | Interface::Memo);
            if !always && !allowed(interface) {
                return Err(denied());
            }
            // The functions' signatures are checked against the linker's at instantiate_pre.
            continue;
        }
        if name != TYPES_INTERFACE && name != host_imports::EFFECT_TYPES {
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
