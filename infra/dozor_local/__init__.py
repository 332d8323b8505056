"""Run Dozor locally without Docker or AWS.

`dozor_local.stack.LocalStack` deploys template.yaml on moto; `dozor_local.invoke` runs a
function's handler in-process the way Lambda would (`dozor invoke`); `dozor_local.cli` is the
`dozor` command. Nothing is imported here, so `dozor --help` stays instant.
"""
