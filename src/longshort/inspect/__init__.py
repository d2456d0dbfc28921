"""Looking inside trained recurrent nets: gate traces, forget-gate statistics, gradient flow."""

from .gates import forget_stats, gate_trace, layer_names, plot_gate_heatmaps
from .gradient_flow import (
    GradientFlow,
    gradient_flow,
    hidden_grad_norms,
    plot_gradient_flow,
    write_gradient_flow_csv,
)

__all__ = [
    "GradientFlow",
    "forget_stats",
    "gate_trace",
    "gradient_flow",
    "hidden_grad_norms",
    "layer_names",
    "plot_gate_heatmaps",
    "plot_gradient_flow",
    "write_gradient_flow_csv",
]
