pytest_plugins = ["testing.fixtures", "testing.clusters"]
