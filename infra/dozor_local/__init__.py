"""Run Dozor locally: template.yaml deployed on moto, handlers invoked in-process (`dozor invoke`)."""

from dozor_local.stack import DEFAULT_TEMPLATE, EventSource, FunctionSpec, LocalStack, Resource

__all__ = ["DEFAULT_TEMPLATE", "EventSource", "FunctionSpec", "LocalStack", "Resource"]
