import os
import sys

reahlsystem.root_egg = "reahl-hello"
# The SQLite database lives inside the Python environment (created by the setup commands),
# never in the source folder.
reahlsystem.connection_uri = "sqlite:///" + os.path.join(sys.prefix, "reahl-hello.db")
reahlsystem.debug = False
