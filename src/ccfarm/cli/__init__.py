"""Small command-line programs: ccfarm-gethost, ccfarm-ctl."""
