from benchmarks.run import main

if __name__ == "__main__":  # vLLM engines started in process (kv_hold's probe) spawn and import it
    main()
