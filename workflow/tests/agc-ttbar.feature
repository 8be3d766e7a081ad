Feature: agc-ttbar reproduces its preserved outputs

  Scenario: The workflow finishes
    When the workflow execution completes
    Then the workflow status should be "finished"

  Scenario: Every declared output is in the workspace
    When the workflow is "finished"
    Then the workspace should include "outputs/histograms.root"
    And the workspace should include "outputs/histograms_ml.root"
    And the workspace should include "outputs/workspace.json"
    And the workspace should include "outputs/agc-ttbar.hs3.json"
    And the workspace should include "outputs/statmodel_report.json"
    And the workspace should include "outputs/fit_results.json"
    And the workspace should include "outputs/samples"
    And the workspace should include "outputs/plots"
