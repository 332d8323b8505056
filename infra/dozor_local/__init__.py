"""Run Dozor locally without Docker or AWS.

`dozor_local.stack.LocalStack` deploys template.yaml on moto; `dozor_local.invoke` runs a
function's handler in-process the way Lambda would (`dozor invoke`). The `dozor` command is
`dozor_training.cli`, one layer up: this package imports the functions package (`dozor`) and
never the training tooling. Nothing is imported here, so `dozor --help` stays instant.
"""
