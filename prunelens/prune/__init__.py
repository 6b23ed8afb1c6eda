from ..model.surgery import apply_keep, check_keep, keep_from_remove, pruned_view

__all__ = ["apply_keep", "check_keep", "keep_from_remove", "pruned_view", "prune", "export_pruned", "METHODS"]


def __getattr__(name):
    # Lazy: importing prunelens.prune for a pruned view must not pull in matplotlib and every method.
    if name == "prune":
        from .run import prune
        return prune
    if name == "export_pruned":
        from .export import export_pruned
        return export_pruned
    if name == "METHODS":
        from .methods import METHODS
        return METHODS
    raise AttributeError(name)
