"""Test-wide environment: dummy AWS credentials and the variables SAM would set.

Set before anything imports a handler, since powertools reads its service name at import.
"""

import os

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
    "POWERTOOLS_SERVICE_NAME": "dozor",
    "POWERTOOLS_METRICS_NAMESPACE": "Dozor",
    "POWERTOOLS_TRACE_DISABLED": "true",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_ENDPOINT_URL", None)  # tests never talk to anything but in-process moto
# OpenMP threads sleep at barriers instead of spinning (see dozor_training/__init__.py): set here
# too, since a test module may load xgboost before anything imports dozor_training.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
