"""Search over a reference space: the index file (``header``, read without torch; ``indexes``; its approximate
FAISS part, ``ann``), building one from a space (``build``), and one search from query to ranked items (``query``).

Each public name is imported from the module that defines it.
"""
