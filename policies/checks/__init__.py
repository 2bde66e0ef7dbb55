"""hardstack's own checks, loadable by stock checkov: `checkov --external-checks-dir "$(hardstack checks-dir)"`.

Each check lives in one file with its metadata (`META`) and its fixtures (`passing_*` / `failing_*` Pulumi
programs); a graph check keeps its checkov definition beside it in a YAML file of the same name.
"""
