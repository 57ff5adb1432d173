"""The offline emulator: a Step Functions runner (asl), the Lambda-like sandbox, the local AWS
emulator and the stack created on it from template.yaml."""
