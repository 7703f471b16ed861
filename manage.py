#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arv.settings")
    from django.core.management import execute_from_command_line

    from arv.metrics.directory import leave_servers_dir

    leave_servers_dir()  # a command is not a server process: its own series stay out of the servers' files

    execute_from_command_line(sys.argv)
