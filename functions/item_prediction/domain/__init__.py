"""The domain: pure rules on pandas frames and the standard library, no AWS (testable alone).

:mod:`.schema` is standard-library only (the read API imports it without the pandas layer).
"""
