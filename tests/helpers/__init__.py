"""Builders and stacks the tests share (imported explicitly, never from a conftest)."""
