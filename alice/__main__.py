import sys

try:
    from alice.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line is still being imported
    sys.stderr.write("error: interrupted; nothing was written\n")
    sys.exit(130)

if __name__ == "__main__":
    main()
