pytest_plugins = ["arv.testing.fixtures"]
