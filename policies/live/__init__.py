"""`hardstack audit`: a live AWS account read with boto3 and judged in the formats and exit codes of `check`.

Account mode (`account.audit_account`) judges every supported resource of a region against hardstack's controls
(`controls`); stack mode (`stack.audit_stack`) finds the resources a synthesized stack declares by their tags and
compares them with their declaration (`declared`: which input is reported by which API field; `compare`: when
the two are the same). What is read, and how, is in `readers` (one file per service)
behind `session.LiveSession`, which turns every failed read into *not verified*."""
